"""Marketing touchpoints: the parser lives in ``offerloop.core.touchpoints`` (features read channels too)."""

from offerloop.core.touchpoints import CHANNELS, TouchpointData, extract_touchpoint

__all__ = ["CHANNELS", "TouchpointData", "extract_touchpoint"]
