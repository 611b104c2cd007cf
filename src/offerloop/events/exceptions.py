from offerloop.core.errors import Conflict, NotFound, OfferloopError, PayloadTooLarge


class BatchTooLarge(PayloadTooLarge):
    code = "batch_too_large"


class EventRefused(OfferloopError):
    """A single-event call whose event was quarantined; the status follows the reason."""

    code = "event_refused"


class QuarantineNotFound(NotFound):
    code = "quarantine_not_found"


class QuarantineClosed(Conflict):
    code = "quarantine_closed"


class InvalidSignalConfig(OfferloopError):
    status_code = 422
    code = "invalid_signal_config"
