"""The e-mail channel's errors: a message that cannot be built as asked, a stored one that is not there,
a transport or DKIM key that is configured wrong."""

from __future__ import annotations

from offerloop.core.errors import NotFound, OfferloopError


class InvalidEmail(OfferloopError):
    """An address, header, URL or Message-ID that would make a malformed or unsafe message."""

    status_code = 422
    code = "email_invalid"


class EmailTooLarge(OfferloopError):
    """The message is over the size limit and no web version was given to link to instead."""

    status_code = 422
    code = "email_too_large"


class EmailNotFound(NotFound):
    code = "email_not_found"


class EmailConfigError(OfferloopError):
    """The SMTP URL, Maildir path or DKIM key in the settings cannot be used (an operator's error)."""

    status_code = 500
    code = "email_config_invalid"
