"""How much a consumer step takes on, and the process's heap once its consumers start."""

from __future__ import annotations

import gc

from sqlalchemy.orm import Session

MIN_STEP = 200  # below this, a step's fixed cost (claim, gate, riders, checkpoint, commit) dominates
_pace: dict[str, float] = {}  # stage -> recent seconds per event of this process's steps (moving average)


def step_size(session: Session, stage: str, *, batch: int, step_s: float) -> int:
    """Events a step of ``stage`` takes: ``batch``, or on SQLite about ``step_s`` seconds of work (at least
    ``MIN_STEP``). There a step holds the one writer lock, and appends (acknowledgements) wait for it; on
    PostgreSQL a step holds only its own rows."""
    per_event = _pace.get(stage)
    if step_s <= 0 or per_event is None or session.get_bind().dialect.name != "sqlite":
        return batch
    return max(min(MIN_STEP, batch), min(batch, int(step_s / per_event)))


def paced(stage: str, events: int, elapsed: float) -> None:
    """Record a step of ``stage``: ``events`` read and applied in ``elapsed`` seconds (wall: the lock's)."""
    if events >= 20:  # a handful of events measures the step's fixed cost, not its pace
        per_event = elapsed / events
        known = _pace.get(stage)
        _pace[stage] = per_event if known is None else 0.7 * known + 0.3 * per_event


_settled = False


def settle_heap() -> None:
    """Once per process, when its consumers start: move every object alive now (modules, the app, the ORM's
    mappers — hundreds of thousands) out of the cyclic collector's reach. Consumers allocate a few dicts per
    event, so the collector runs often, and each full pass re-scanned all of them: a quarter of the
    consumers' CPU and of reading the log (bench/consumers.py --no-gc-freeze). Objects that become garbage
    later are still freed by reference counting; only cycles among them are kept."""
    global _settled
    if not _settled:
        _settled = True
        gc.freeze()
