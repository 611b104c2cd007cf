"""Console errors, each with its HTTP status (rendered as an HTML page inside the console)."""

from __future__ import annotations

from offerloop.core.errors import Conflict, Forbidden, NotFound, OfferloopError, RateLimited, ValidationFailed


class SignInRequired(OfferloopError):
    status_code = 401
    code = "sign_in_required"


class BadCredentials(OfferloopError):
    status_code = 401
    code = "bad_credentials"


class RoleRefused(Forbidden):
    code = "role_refused"


class CsrfRefused(Forbidden):
    code = "csrf_refused"


class LoginRateLimited(RateLimited):
    code = "login_rate_limited"


class UserExists(Conflict):
    code = "user_exists"


class UserNotFound(NotFound):
    code = "user_not_found"


class InvalidUser(ValidationFailed):
    code = "invalid_user"


class WorkspaceNeeded(ValidationFailed):
    code = "workspace_needed"
