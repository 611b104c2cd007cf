"""Background jobs of the invoices domain: render a new document's PDF and announce it on the buyer's
record with a signed link (kind ``invoices.announce``, keyed by the document's id)."""

from __future__ import annotations

from datetime import datetime

from offerloop.config import Settings
from offerloop.invoices import service as invoices_service
from offerloop.jobs import runner


@runner.register(invoices_service.ANNOUNCE_KIND, max_attempts=8, backoff_base_s=5.0, backoff_cap_s=600.0)
def announce(ctx: runner.Context) -> datetime | None:
    """Transactional: the PDF, the event and the job's finish commit together (run again, it does nothing)."""
    assert ctx.session is not None and ctx.job.workspace_id is not None
    found = ctx.deps.get("settings")
    settings = found if isinstance(found, Settings) else Settings()
    invoices_service.announce(session=ctx.session, workspace_id=ctx.job.workspace_id, invoice_id=ctx.job.key,
                              secret=settings.secret, public_url=settings.public_url, now=ctx.now)  # fmt: skip
    return None
