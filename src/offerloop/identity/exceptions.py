from offerloop.core.errors import Conflict, NotFound, ValidationFailed


class BuyerNotFound(NotFound):
    code = "buyer_not_found"


class MergeNotFound(NotFound):
    code = "merge_not_found"


class MergeNotUndoable(Conflict):
    code = "merge_not_undoable"


class LookupNeedsOneIdentifier(ValidationFailed):
    code = "lookup_needs_one_identifier"
