from offerloop.core.errors import Conflict, Forbidden, NotFound, Unauthorized


class InvalidKey(Unauthorized):
    code = "invalid_key"


class SecretKeyRequired(Forbidden):
    code = "secret_key_required"


class WorkspaceNotFound(NotFound):
    code = "workspace_not_found"


class KeyNotFound(NotFound):
    code = "key_not_found"


class KeyRevoked(Conflict):
    code = "key_revoked"
