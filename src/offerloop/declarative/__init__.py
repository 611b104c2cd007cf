"""The declarative-config toolkit: YAML/JSON with line numbers -> pydantic -> ``file:line: path: message``.

Porting a config kind takes three things:

* a pydantic model (``ConfigDict(extra="forbid", strict=True)``; discriminated unions with
  ``Field(discriminator=...)``; field types from :mod:`offerloop.declarative.types`);
* an error type: a subclass of :class:`ConfigError` with its own ``code``;
* a loader call: ``validate(Model, load_document(text, file=path), error=KindError)``, which raises
  every problem at once, each as ``file:line: path: message``, ordered by line.

Data that arrives already parsed (a JSON body) goes through ``Document.of(data)``: the same problems,
without lines. ``validate(..., default=...)`` gives a default for an empty document.

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
    parse_path,
    sort_problems,
)
from offerloop.declarative.errors import (
    ConfigError,
    Reporter,
    did_you_mean,
    problem_at,
    validate,
    validation_problems,
)
from offerloop.declarative.types import AwareDatetime, Count, Text, matching, one_of
from offerloop.declarative.version import content_version
from offerloop.declarative.yaml_loading import (
    MAX_YAML_DEPTH,
    BoundedSafeLoader,
    StringDateLoader,
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
    "did_you_mean",
    "format_path",
    "load_document",
    "matching",
    "one_of",
    "parse_path",
    "parse_yaml",
    "problem_at",
    "show",
    "sort_problems",
    "validate",
    "validation_problems",
]
