"""Due work of journeys' clock triggers and of turnaround promises (registered like ``delivery/tasks.py``).

``delivery.clock`` is recurring (one job, started by every runner): a pass over the journeys the clock
starts, transactional so the entries and the scan cursors commit together. ``delivery.promise_due`` is one
job per promise (key ``<workspace>/<order>``) at its due time.
"""

from __future__ import annotations

from datetime import datetime

from offerloop.checkout import due as checkout_due
from offerloop.delivery import promises, schedule
from offerloop.jobs.runner import Context, register


@register(schedule.CLOCK, max_attempts=1000, backoff_cap_s=schedule.EVERY_S, every_s=schedule.EVERY_S)
def clock(ctx: Context) -> datetime | None:
    assert ctx.session is not None
    return schedule.run(ctx.session, ctx.now)


@register(promises.DUE)
def promise_due(ctx: Context) -> datetime | None:
    assert ctx.session is not None and ctx.job.workspace_id is not None
    return promises.due(session=ctx.session, workspace_id=ctx.job.workspace_id,
                        order_id=checkout_due.object_id(ctx.job.key), now=ctx.now)  # fmt: skip
