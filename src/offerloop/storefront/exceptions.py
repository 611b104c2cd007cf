"""Errors of the hosted pages, each with its HTTP status (rendered as an HTML page)."""

from __future__ import annotations

from offerloop.core.errors import Forbidden, NotFound, PayloadTooLarge, ValidationFailed


class PageNotFound(NotFound):
    """No such workspace, offer or thank-you page: the public pages do not say which."""

    code = "page_not_found"


class CsrfRefused(Forbidden):
    code = "csrf_refused"


class BadForm(ValidationFailed):
    code = "invalid_form"


class FormTooLarge(PayloadTooLarge):
    code = "form_too_large"
