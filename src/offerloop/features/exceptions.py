from offerloop.declarative import ConfigError


class InvalidFeatureSpec(ConfigError, ValueError):
    """A feature spec that does not validate (422): every problem as ``file:line: path: message`` (``path:
    message`` for a mapping); also a ``ValueError``, as the loader's errors always were."""

    code = "invalid_feature_spec"
