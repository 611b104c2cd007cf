"""``Audience``: the plans, the merged per-buyer streams, duplicates and malformed messages, stats."""

from __future__ import annotations

import heapq
import random
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from offerloop.sim.audience.behaviours import BEHAVIOURS
from offerloop.sim.audience.clock import _DAY_MS, _DEFAULT_START, _ms
from offerloop.sim.audience.ids import _rng_uuid
from offerloop.sim.audience.parameters import CHANNELS
from offerloop.sim.audience.population import SyntheticBuyer, _allocate, _finish_plan, _make_plans, _Plan
from offerloop.sim.audience.run import _Rec
from offerloop.sim.audience.segment import (
    _MALFORMED_KINDS,
    _clock_ms,
    _render,
    _render_malformed,
    _sent,
    _stamp,
)
from offerloop.sim.audience.world import _build_world, _World


@dataclass(frozen=True, slots=True)
class AudienceStats:
    """Counts for one full pass over ``Audience.messages()``.

    ``events`` counts every message (duplicates and malformed included). ``by_type`` counts the ``type``
    of every well-formed message (duplicates included), so ``sum(by_type.values()) + malformed == events``.
    ``by_channel`` counts buyers by acquisition channel.
    """

    buyers: int
    identified: int
    events: int
    duplicates: int
    malformed: int
    by_channel: dict[str, int]
    by_type: dict[str, int]


def _buyer_stream(world: _World, plan: _Plan) -> Iterator[_Rec]:
    yield from BEHAVIOURS[plan.persona](world, plan).run()


class Audience:
    """A seeded synthetic creator audience; see the module docstring."""

    def __init__(
        self,
        *,
        buyers: int = 5000,
        events: int = 200_000,
        seed: int = 7,
        start: datetime | None = None,
        days: int = 90,
        duplicate_rate: float = 0.01,
        malformed_rate: float = 0.004,
    ) -> None:
        if buyers < 1:
            raise ValueError("buyers must be >= 1")
        if events < 0:
            raise ValueError("events must be >= 0")
        if days < 1:
            raise ValueError("days must be >= 1")
        if not (0.0 <= duplicate_rate < 0.5 and 0.0 <= malformed_rate < 0.5):
            raise ValueError("duplicate_rate and malformed_rate must be in [0, 0.5)")
        if start is None:
            start = _DEFAULT_START
        elif start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        self._seed_key = f"offerloop-sim-v1:{seed}"
        self._events = events
        start_ms = _ms(start)
        self._world = _build_world(self._seed_key, start_ms, start_ms + days * _DAY_MS)

        n_malformed = round(events * malformed_rate)
        n_duplicates = round(events * duplicate_rate)
        if events > 0:  # the first message must be a normal one (a duplicate needs an original)
            n_duplicates = min(n_duplicates, events - 1)
            n_malformed = min(n_malformed, events - 1 - n_duplicates)
        else:
            n_duplicates = n_malformed = 0
        self._n_duplicates = n_duplicates
        self._n_malformed = n_malformed
        n_normal = events - n_duplicates - n_malformed

        rng = random.Random(f"{self._seed_key}:plan")
        self._plans = _make_plans(rng, self._world, buyers)
        for plan, budget in zip(self._plans, _allocate(n_normal, self._plans), strict=True):
            _finish_plan(rng, plan, budget, len(self._plans))
        self.buyers: list[SyntheticBuyer] = [p.buyer for p in self._plans if p.buyer is not None]

        # Stream positions of duplicates (-1) and malformed messages (index into the malformed kinds).
        specials = rng.sample(range(1, events), n_duplicates + n_malformed) if events > 1 else []
        kinds = [i % len(_MALFORMED_KINDS) for i in range(n_malformed)]
        rng.shuffle(kinds)
        self._special: dict[int, int] = {}
        for i, pos in enumerate(specials):
            self._special[pos] = -1 if i >= n_malformed else i
        self._malformed_kinds = kinds
        self.malformed_message_ids: set[str] = {
            _rng_uuid(random.Random(f"{self._seed_key}:malformed:{i}")) for i in range(n_malformed)
        }
        self._stats: AudienceStats | None = None

    def _message(self, rec: _Rec) -> dict[str, Any]:
        return _render(rec, self._plans[rec.buyer], self._seed_key)

    def _malformed(self, i: int, now_ms: int) -> dict[str, Any]:
        return _render_malformed(
            i, _MALFORMED_KINDS[self._malformed_kinds[i]], self._plans, self._seed_key, now_ms
        )

    def _skew(self, rec: _Rec) -> int:
        """The clock error (ms) of the device that sends ``rec``; server-side messages have none."""
        return 0 if rec.device < 0 else self._plans[rec.buyer].devices[rec.device].skew_ms

    def _stream(self) -> Iterator[tuple[int, dict[str, Any], int]]:
        """(kind, message, sender's clock skew in ms): kind 0 = normal, 1 = duplicate, 2 = malformed."""
        merged = heapq.merge(*(_buyer_stream(self._world, p) for p in self._plans), key=itemgetter(0))
        srng = random.Random(f"{self._seed_key}:stream")
        recent: deque[_Rec] = deque(maxlen=4096)
        reservoir: list[_Rec] = []
        seen = 0
        now_ms = self._world.start_ms
        special = self._special
        render = self._message
        for pos in range(self._events):
            slot = special.get(pos)
            if slot is None:
                rec = next(merged)
                now_ms = rec.t
                recent.append(rec)
                seen += 1
                if len(reservoir) < 512:
                    reservoir.append(rec)
                else:
                    j = srng.randrange(seen)
                    if j < 512:
                        reservoir[j] = rec
                yield 0, render(rec), self._skew(rec)
            elif slot < 0:
                r = srng.random()
                if r < 0.45:  # re-sent within the same batch (usually)
                    original = recent[-1 - srng.randrange(min(len(recent), 30))]
                elif r < 0.75:
                    original = recent[-1 - srng.randrange(len(recent))]
                else:  # much later
                    original = reservoir[srng.randrange(len(reservoir))]
                yield 1, render(original), self._skew(original)
            else:
                yield 2, self._malformed(slot, now_ms), 0

    def messages(self, *, sent_at: Callable[[], datetime] | None = None) -> Iterator[dict[str, Any]]:
        """Every message in (send) time order, exactly ``events`` of them.

        ``sent_at``: the clock of a replay (see the module docstring); read as each message is yielded.
        """
        for _, msg, skew in self._stream():
            if sent_at is not None:
                _stamp(msg, _clock_ms(sent_at), skew)
            yield msg

    def batches(
        self, size: int = 100, *, sent_at: Callable[[], datetime] | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """Chunks of ``messages()``; each is the ``batch`` list of one Segment ``/v1/batch`` request.

        ``sent_at``: the clock of a replay (see the module docstring), read once per batch when it is
        complete, so yield each batch only when it is about to be sent.
        """
        for chunk in self.unsent_batches(size):
            yield _sent(chunk, sent_at)

    def unsent_batches(self, size: int = 100) -> Iterator[list[tuple[dict[str, Any], int]]]:
        """Chunks of ``messages()`` as (message, device clock skew in ms), without ``sentAt``: a replay
        can render the whole stream first and stamp each batch with ``stamp_sent`` as it sends it."""
        if size < 1:
            raise ValueError("size must be >= 1")
        chunk: list[tuple[dict[str, Any], int]] = []
        for _, msg, skew in self._stream():
            chunk.append((msg, skew))
            if len(chunk) == size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    def stats(self) -> AudienceStats:
        """Counts from one streaming pass (cached); no message is kept."""
        if self._stats is None:
            by_type: dict[str, int] = {}
            events = duplicates = malformed = 0
            for kind, msg, _ in self._stream():
                events += 1
                if kind == 2:
                    malformed += 1
                    continue
                duplicates += kind
                by_type[msg["type"]] = by_type.get(msg["type"], 0) + 1
            by_channel = {c: 0 for c in CHANNELS}
            for b in self.buyers:
                by_channel[b.channel] += 1
            self._stats = AudienceStats(
                buyers=len(self.buyers),
                identified=sum(1 for b in self.buyers if b.user_id is not None),
                events=events,
                duplicates=duplicates,
                malformed=malformed,
                by_channel=by_channel,
                by_type=dict(sorted(by_type.items())),
            )
        return self._stats
