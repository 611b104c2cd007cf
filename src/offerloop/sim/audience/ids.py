"""UUIDs drawn from the seeded generators (never ``uuid4()``: the same seed gives the same ids)."""

from __future__ import annotations

import random
from typing import Final

_UUID_MASK: Final = (1 << 128) - 1
_UUID_CLEAR: Final = ~((0xF000 << 64) | (0xC000 << 48))
_UUID_SET: Final = (0x4000 << 64) | (0x8000 << 48)


def _rng_uuid(rng: random.Random) -> str:
    """A version-4 UUID string drawn from ``rng`` (same text as ``str(uuid.UUID(int=..., version=4))``)."""
    h = f"{(rng.getrandbits(128) & _UUID_CLEAR) | _UUID_SET:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
