from offerloop.core.errors import Conflict, NotFound, ValidationFailed


class BuyerNotFound(NotFound):
    code = "buyer_not_found"


class BuyerErased(Conflict):
    """The buyer was erased (GDPR): nothing new, access or a deliverable, is made for their tombstone."""

    code = "buyer_erased"


class MergeNotFound(NotFound):
    code = "merge_not_found"


class MergeNotUndoable(Conflict):
    code = "merge_not_undoable"


class LookupNeedsOneIdentifier(ValidationFailed):
    code = "lookup_needs_one_identifier"
