"""Deterministic synthetic creator audience emitting Segment-spec messages for ``/v1/batch``.

Every synthetic buyer carries a hidden ground-truth persona (``SyntheticBuyer.persona``) that drives
its behaviour; nothing in the emitted messages names the persona. The output depends only on the
constructor arguments: the same arguments give a byte-identical message stream on any machine
(time zones come from the pinned tzdata package, never the host's tz database; messageIds are derived from
the seed, never from ``uuid4()``; the default start is a fixed date, never "now").

Order: ``messages()`` is ordered by true event time. A device with a skewed clock shifts both
``timestamp`` and ``sentAt`` by the same amount, so its timestamps look out of order; server-side
messages (renewals, email events: ``userId`` only, no ``anonymousId``) are never skewed. Events fall
in ``[start, start + days)``, except that a session begun just before the end may run on for up to
about an hour.

``sentAt`` and replays: an ingestion API corrects each event's time for the client's clock as Segment
does, ``timestamp = receivedAt - (sentAt - originalTimestamp)``. By default ``sentAt`` is the
*simulated* send time (the event time plus a send delay, on the device's clock), the stream a device
would have sent live at the simulated dates. Replaying that history now through a live API would be
dishonest: every event would be corrected onto the day it arrives. So a replay passes
``sent_at=<clock>`` to ``messages()`` / ``batches()``: each message's ``sentAt`` is then the REAL
send time read from that clock (once per batch, when the batch is complete, as Segment's SDKs stamp
it) plus the device's clock skew, exactly what an SDK sending the stored history now would write. The
correction then puts every event back at its simulated time (plus the network latency) while still
removing each device's skew. (Segment's other way to import history, a server-side backfill that sends
``timestamp`` without ``sentAt``, would leave the devices' skew in the stored times.) Inject a fixed or
stepping clock where the output must be byte-identical.

Memory: construction builds one small plan per buyer. ``messages()`` runs one lazy generator per
buyer, merges them by time with ``heapq.merge`` and renders each message dict only when it is
yielded. Besides the per-buyer state (about 10 KB a buyer, independent of ``events``) it keeps only a
bounded window of light records for duplicate re-sends, never the stream.

Ground truth kept outside the messages:

* ``Audience.buyers`` -- the buyers, with persona, acquisition channel and identities. ``email`` is
  the canonical (lower-case, stripped) address; messages may carry messy variants of it.
* ``Audience.malformed_message_ids`` -- messageIds of the messages an ingestion API must refuse.
* ``Audience.stats()`` -- counts, including duplicates (exact re-sends of earlier messages).

Every yielded message is a fresh dict; a duplicate is the earlier message rendered again from the
same record, so mutating yielded messages never changes later duplicates.
"""

from __future__ import annotations

from offerloop.sim.audience.parameters import CHANNELS, PERSONAS
from offerloop.sim.audience.population import SyntheticBuyer
from offerloop.sim.audience.segment import stamp_sent
from offerloop.sim.audience.stream import Audience, AudienceStats

__all__ = ["CHANNELS", "PERSONAS", "Audience", "AudienceStats", "SyntheticBuyer", "stamp_sent"]
