from offerloop.core.errors import NotFound, OfferloopError


class DecisionNotFound(NotFound):
    code = "decision_not_found"


class UnknownCandidates(OfferloopError):
    status_code = 422
    code = "unknown_candidates"
