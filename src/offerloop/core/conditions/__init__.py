"""The one condition language of every offerloop config: signal rules, feature filters, persona signals,
eligibility rules, composition policies (and journeys and gates later).

A condition is a tree::

    {all: [c, ...]}    every one holds (``{all: []}`` always holds)
    {any: [c, ...]}    at least one holds (``{any: []}`` never holds)
    {not: c}           c does not hold
    {path: features.orders, gte: 1, lt: 5}                  a test on one value; every operator must hold
    {features.orders: {gte: 1}, persona: {in: [a, b]}}      shorthand: one test per path, all must hold

Short forms kept from the configs that came before: ``{answer: q, in: [...]}``, ``{answer: q, equals: v}``,
``{answer: q, answered: true}``, ``{score: d, gte: 2}``, ``{persona: [a, b]}``, ``{feature: f, gte: 1}``,
``{trait: t, eq: v}``, ``{property: p, exists: true}``. A value that is not a mapping means ``eq``.

**Paths** start with a root (``traits``, ``features``, ``persona``, ``answers``, ``scores``,
``entitlements``, ``properties``, ``event``, and ``experiments``, which the caller resolves: a journey
branch reads ``experiments.<key>`` as the buyer's arm); each config kind says which roots its conditions may read and
which root a bare key means (``where:`` in signal rules reads event properties, so ``plan`` there is
``properties.plan``). Below the root, ``a.b`` is first the literal key ``"a.b"``, then ``a`` then ``b``; a
digit segment indexes a list.

**Semantics**, the same for every kind:

- *Missing* (the path leads nowhere) is not ``null``: ``null`` is a value. A missing value fails every
  operator except ``ne``, ``not_in`` and ``exists: false``, which hold.
- *Types* never mix: ``true`` is not ``1``, ``"3"`` is not ``3``; ``3`` equals ``3.0``. Ordered comparisons
  (``gt``, ``gte``, ``lt``, ``lte``, ``between``) hold between numbers, or between strings (so ISO dates
  compare as text); anything else fails them.
- *Lists*: ``eq`` compares whole values. ``in`` holds when the value is one of the items — for a list value
  (a multiple-choice answer, tags), when any of its items is; ``not_in`` is its negation. ``contains`` holds
  for a string containing the text, or a list with an item equal to the operand.
- *Time*: ``within: 7d`` holds for a timestamp (an aware datetime or ISO-8601 text with an offset) no older
  than 7 days and not in the future; ``older_than: 7d`` for one older than that. Units: s, m, h, d, w.
- ``matches`` is a regular expression the whole text must match.

:func:`describe` gives the reason shown in decisions and lint output: ``features.orders >= 1``.

Modules: ``model`` (the tree, vocabulary and limits), ``parsing``, ``evaluation`` (semantics, compiled
checks), ``words`` (back to data and to words), ``where`` (``where:`` conditions as pydantic fields).
Import from this package: its names are the stable ones.
"""

from __future__ import annotations

from offerloop.core.conditions.evaluation import compile_condition, evaluate, member, reader, resolve, same
from offerloop.core.conditions.model import (
    CALLER_ROOTS,
    MAX_DEPTH,
    MAX_ITEMS,
    MAX_NODES,
    MAX_PATTERN,
    MISSING,
    OPERATORS,
    ROOTS,
    All,
    Any_,
    Check,
    Condition,
    ConditionError,
    Leaf,
    Not,
    Scope,
)
from offerloop.core.conditions.parsing import parse, parse_leaf, parse_where
from offerloop.core.conditions.where import (
    CONDITION_ERROR,
    PropertiesWhere,
    Where,
    problems_of,
    pydantic_error,
)
from offerloop.core.conditions.words import describe, leaves, to_data

__all__ = [
    "CALLER_ROOTS",
    "CONDITION_ERROR",
    "MAX_DEPTH",
    "MAX_ITEMS",
    "MAX_NODES",
    "MAX_PATTERN",
    "MISSING",
    "OPERATORS",
    "ROOTS",
    "All",
    "Any_",
    "Check",
    "Condition",
    "ConditionError",
    "Leaf",
    "Not",
    "PropertiesWhere",
    "Scope",
    "Where",
    "compile_condition",
    "describe",
    "evaluate",
    "leaves",
    "member",
    "parse",
    "parse_leaf",
    "parse_where",
    "problems_of",
    "pydantic_error",
    "reader",
    "resolve",
    "same",
    "to_data",
]
