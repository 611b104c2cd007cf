"""The attribution domain's errors."""

from __future__ import annotations

from offerloop.core.errors import ValidationFailed


class AttributionInputError(ValidationFailed):
    """Paths or parameters the models cannot use (an empty path, a negative count, an unknown model…)."""

    code = "attribution_invalid_input"


class TooManyChannels(ValidationFailed):
    """Exact Shapley values enumerate every coalition of channels: refused above ``MAX_SHAPLEY_CHANNELS``."""

    code = "attribution_too_many_channels"
