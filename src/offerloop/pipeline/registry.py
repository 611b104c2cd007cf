"""Consumers of the event log: what a consumer is given, and the one call that registers it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, NamedTuple

from sqlalchemy.orm import Session


class LogEvent(NamedTuple):
    """One appended event as a consumer sees it. ``buyer_id`` is set by the identity stage (None before).

    A named tuple, not a frozen dataclass: every event is built once per stage read, and a frozen
    dataclass's ``__init__`` (one ``object.__setattr__`` per field) cost 5x a tuple's."""

    seq: int
    workspace_id: str
    message_id: str
    type: str
    name: str | None
    buyer_id: str | None
    user_id: str | None
    anonymous_id: str | None
    group_id: str | None
    previous_id: str | None
    timestamp: datetime
    original_timestamp: datetime | None
    sent_at: datetime | None
    received_at: datetime
    properties: dict[str, Any] | None
    traits: dict[str, Any] | None
    context: dict[str, Any] | None
    weight: float
    confidence: float
    high_signal: bool
    suppressed: bool


# Called with one workspace's events of one partition, in log order, inside the transaction that also
# advances the consumer's checkpoint; it must tolerate seeing an event again (a replay of a parked event).
ConsumerFn = Callable[[Session, str, Sequence[LogEvent]], None]
# An optional split of ``fn`` for SQLite's one writer: ``prepare`` reads and computes in a read transaction
# (before the writer lock is taken) and returns a plan, or None; ``apply`` then runs in the step's write
# transaction with the same events and that plan. It must check that what the plan was computed from still
# holds, and else do what ``fn`` does: applying a plan has exactly ``fn``'s effect.
PrepareFn = Callable[[Session, str, Sequence[LogEvent]], Any]
ApplyFn = Callable[[Session, str, Sequence[LogEvent], Any], None]
Stage = Literal["identity", "buyer"]


@dataclass(frozen=True)
class Consumer:
    name: str
    fn: ConsumerFn
    # "identity" consumers run first, one partition per workspace, and give events their buyer;
    # "buyer" consumers run after them, partitioned by buyer, so each buyer's events arrive in order.
    stage: Stage
    order: int
    # What a replay of one of its parked events runs instead of ``fn`` (None: ``fn``). A replayed event lies
    # behind the consumer's checkpoint, and behind whatever watermark the consumer keeps per buyer (its later
    # events went on): a consumer that skips what it has "already seen" by such a mark must take it here.
    replay: ConsumerFn | None = None
    prepare: PrepareFn | None = None
    apply: ApplyFn | None = None


_consumers: dict[str, Consumer] = {}


def consumer(
    name: str,
    *,
    stage: Stage = "buyer",
    order: int = 100,
    replay: ConsumerFn | None = None,
    prepare: PrepareFn | None = None,
    apply: ApplyFn | None = None,
) -> Callable[[ConsumerFn], ConsumerFn]:
    """Register a consumer of the event log (one line per capability; ingestion is never edited)."""
    if (prepare is None) != (apply is None):
        raise ValueError("a consumer's prepare and apply come together")

    def wrap(fn: ConsumerFn) -> ConsumerFn:
        from offerloop.pipeline import runner  # the runner reads this registry

        _consumers[name] = Consumer(name, fn, stage, order, replay, prepare, apply)
        runner.register_kind(name)  # its checkpoints are jobs of kind consumer:<name>
        return fn

    return wrap


def unregister(name: str) -> None:
    """Forget a consumer (tests register their own); its checkpoint rows stay and are skipped."""
    _consumers.pop(name, None)


def consumers() -> list[Consumer]:
    """Every registered consumer, identity stage first, then by ``order`` and name."""
    return sorted(_consumers.values(), key=lambda c: (c.stage != "identity", c.order, c.name))
