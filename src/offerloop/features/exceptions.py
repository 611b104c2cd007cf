from offerloop.core.errors import OfferloopError


class InvalidFeatureSpec(OfferloopError):
    status_code = 422
    code = "invalid_feature_spec"
