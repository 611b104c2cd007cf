"""The analytics domain's errors."""

from __future__ import annotations

from offerloop.core.errors import ValidationFailed


class BadAnalyticsQuery(ValidationFailed):
    """A parameter of an analytics read is malformed or out of its bounds (422)."""

    code = "invalid_analytics_query"


class CurrencyRequired(ValidationFailed):
    """The workspace sold in several currencies: revenue needs the one to report in (422)."""

    code = "currency_required"
