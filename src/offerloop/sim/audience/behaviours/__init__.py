"""One behaviour per persona: how a buyer of that persona spends its sessions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from offerloop.sim.audience.behaviours.deal import DealRun
from offerloop.sim.audience.behaviours.gifting import GiftingRun
from offerloop.sim.audience.behaviours.loyalist import LoyalistRun
from offerloop.sim.audience.behaviours.lurker import LurkerRun
from offerloop.sim.audience.behaviours.superfan import SuperfanRun
from offerloop.sim.audience.behaviours.weekend import WeekendRun
from offerloop.sim.audience.parameters import PERSONAS
from offerloop.sim.audience.session import _BuyerRun

__all__ = ["BEHAVIOURS"]

BEHAVIOURS: Final[Mapping[str, type[_BuyerRun]]] = dict(
    zip(PERSONAS, (SuperfanRun, WeekendRun, LoyalistRun, GiftingRun, LurkerRun, DealRun), strict=True)
)
