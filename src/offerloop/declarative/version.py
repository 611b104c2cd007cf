"""The one content version of every declarative config."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def content_version(data: Any) -> str:
    """First 16 hex characters of the sha256 of ``data``'s canonical JSON (sorted keys, compact, UTF-8).

    Key order and formatting never change it; any change of value does. Values JSON has no type for
    (datetimes, decimals) count as their ``str``; NaN and infinities are refused (ValueError).
    """
    canonical = json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=str
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]
