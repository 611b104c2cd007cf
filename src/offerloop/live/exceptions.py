"""Errors of live drops, each with its HTTP status and stable code."""

from __future__ import annotations

from offerloop.core.errors import Conflict, NotFound, ValidationFailed


class DropNotFound(NotFound):
    """No such workspace, or no drop by that key in its catalog (the public pages do not say which)."""

    code = "drop_not_found"


class DropNotLive(Conflict):
    """The drop cannot be opened or bought now: ``code`` says why (``not_signed_off``, ``drop_ended``,
    ``sold_out``, ``not_live``)."""

    code = "not_live"


class BadViewer(ValidationFailed):
    """A viewer id that is not an anonymousId (1-128 letters, digits and ``._:@-``)."""

    code = "invalid_viewer"


class AssetNotFound(NotFound):
    """No overlay file by that name."""

    code = "asset_not_found"
