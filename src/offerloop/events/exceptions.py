from offerloop.core.errors import Conflict, NotFound, OfferloopError, PayloadTooLarge
from offerloop.declarative import ConfigError


class BatchTooLarge(PayloadTooLarge):
    code = "batch_too_large"


class EventRefused(OfferloopError):
    """A single-event call whose event was quarantined; the status follows the reason."""

    code = "event_refused"


class QuarantineNotFound(NotFound):
    code = "quarantine_not_found"


class QuarantineClosed(Conflict):
    code = "quarantine_closed"


class InvalidSignalConfig(ConfigError, ValueError):
    """Signal rules that do not validate (422): every problem as ``file:line: path: message`` (``path:
    message`` for a mapping); also a ``ValueError``, as the loader's errors always were."""

    code = "invalid_signal_config"
