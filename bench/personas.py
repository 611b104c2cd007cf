"""Persona inference on the demo audience: the confusion matrix against the simulator's true personas.

    python bench/personas.py                      # the demo's audience: 5,000 buyers, 200,000 events, seed 7
    python bench/personas.py --buyers 1000 --events 40000 --seed 3
    python bench/personas.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

The audience is ingested in-process through the same service path as ``/v1/batch`` (validation, identity,
features, personas at ingest, one transaction per batch of 100), with the demo's signal rules and persona
templates, into a fresh SQLite file (or the given database). Then every buyer the simulator identified
(a known userId) is looked up and its live persona compared with its true one.

Targets (issue 9 item 12): accuracy >= 85% among identified buyers, every persona's recall >= 70%.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import machine

from offerloop.cli.common import database
from offerloop.cli.persona_truth import ingest_in_process, persona_confusion
from offerloop.config import Settings
from offerloop.core.clock import utcnow
from offerloop.events import service as event_service
from offerloop.personas import service as persona_service
from offerloop.sim.audience import Audience
from offerloop.workspaces import service as workspace_service

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buyers", type=int, default=5000)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'personas.db'}"
        audience = Audience(buyers=args.buyers, events=args.events, seed=args.seed)
        with database(Settings(database_url=url)) as db:
            with db.write() as session:
                ws = workspace_service.create_workspace(session=session, name="personas bench")
                event_service.set_signal_config(
                    session=session,
                    workspace_id=ws.id,
                    source=(DEMO / "signals.yaml").read_text(),
                    actor="bench",
                )
                persona_service.set_templates(
                    session=session,
                    workspace_id=ws.id,
                    source=(DEMO / "personas.yaml").read_text(),
                    actor="bench",
                )
            started = time.perf_counter()
            # The replay is sent now: sentAt is the real send time, on each device's (skewed) clock.
            stored = ingest_in_process(db, ws.id, audience.batches(100, sent_at=utcnow))
            elapsed = time.perf_counter() - started
            with db.read() as session:
                confusion = persona_confusion(session=session, workspace_id=ws.id, buyers=audience.buyers)

    print(f"machine: {machine()}")
    print(
        f"audience: {args.buyers:,} buyers, {args.events:,} events, seed {args.seed}; {stored:,} events stored "
        f"in {elapsed:.0f} s ({url.split(':', 1)[0]})"
    )
    print("\nRows: the simulator's true persona; columns: the persona inferred live at ingest.\n")
    print(confusion.format())


if __name__ == "__main__":
    main()
