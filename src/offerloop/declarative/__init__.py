"""The declarative-config toolkit: YAML/JSON with line numbers -> pydantic -> ``file:line: path: message``.

Porting a config kind takes three things:

* a pydantic model (``ConfigDict(extra="forbid", strict=True)``; discriminated unions with
  ``Field(discriminator=...)``; field types from :mod:`offerloop.declarative.types`);
* an error type: a subclass of :class:`ConfigError` with its own ``code``;
* a loader call: ``validate(Model, load_document(text, file=path), error=KindError)``, which raises
  every problem at once, each as ``file:line: path: message``, ordered by line.

Cross-entry checks (references between entries) go in ``validate(..., check=...)``; a model validator
reports below its model with ``raise problem_at(("sub", 0), "message")``. Content is versioned with
:func:`content_version`.
"""

from offerloop.declarative.document import (
    Document,
    Location,
    Problem,
    format_path,
    load_document,
    sort_problems,
)
from offerloop.declarative.errors import ConfigError, Reporter, problem_at, validate, validation_problems
from offerloop.declarative.types import AwareDatetime, Count, Text, matching
from offerloop.declarative.version import content_version
from offerloop.declarative.yaml_loading import (
    MAX_YAML_DEPTH,
    BoundedSafeLoader,
    StringDateLoader,
    load_config,
    parse_yaml,
    show,
)

__all__ = [
    "MAX_YAML_DEPTH",
    "AwareDatetime",
    "BoundedSafeLoader",
    "ConfigError",
    "Count",
    "Document",
    "Location",
    "Problem",
    "Reporter",
    "StringDateLoader",
    "Text",
    "content_version",
    "format_path",
    "load_config",
    "load_document",
    "matching",
    "parse_yaml",
    "problem_at",
    "show",
    "sort_problems",
    "validate",
    "validation_problems",
]
