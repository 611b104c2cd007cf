"""The one condition language: forms, paths, and the documented semantics of missing values, types,
lists and time — the same for every config kind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from offerloop.core.conditions import (
    MISSING,
    All,
    Any_,
    ConditionError,
    Leaf,
    Not,
    Scope,
    describe,
    evaluate,
    leaves,
    parse,
    parse_where,
    resolve,
    to_data,
)

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
FACTS = {
    "features": {"orders": 3, "ratio": 0.5, "vip": True, "plan": "pro", "tags": ["a", "b"], "nothing": None},
    "persona": "builder",
    "answers": {"stage": "idea", "goals": ["grow", "launch"]},
    "scores": {"readiness": 2.5},
    "properties": {"a.b": 1, "a": {"b": 2, "c": [10, 20]}, "seen": "2026-12-01T12:00:00+00:00"},
    "entitlements": ["course:intro"],
}


def holds(data: object, **facts: object) -> bool:
    return evaluate(parse(data), facts or FACTS, now=NOW)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"path": "features.orders", "gte": 3}, True),
        ({"path": "features.orders", "gt": 3}, False),
        ({"path": "features.orders", "between": [1, 3]}, True),
        ({"path": "features.orders", "eq": 3.0}, True),  # 3 equals 3.0
        ({"path": "features.orders", "eq": "3"}, False),  # text is not a number
        ({"path": "features.vip", "eq": 1}, False),  # true is not 1
        ({"path": "features.vip", "eq": True}, True),
        ({"path": "features.vip", "gte": 1}, False),  # booleans are not ordered
        ({"path": "features.plan", "gte": "pr"}, True),  # text compares with text
        ({"path": "features.plan", "gte": 1}, False),
        ({"path": "features.nothing", "eq": None}, True),  # null is a value ...
        ({"path": "features.nothing", "exists": True}, True),
        ({"path": "features.absent", "eq": None}, False),  # ... missing is not
        ({"path": "features.absent", "exists": False}, True),
        ({"path": "features.absent", "ne": 1}, True),  # missing passes ne and not_in only
        ({"path": "features.absent", "not_in": [1]}, True),
        ({"path": "features.absent", "lt": 1}, False),
        ({"path": "features.absent", "in": [1]}, False),
        ({"path": "features.tags", "in": ["b", "z"]}, True),  # a list value: any of its items
        ({"path": "features.tags", "not_in": ["b"]}, False),
        ({"path": "features.tags", "eq": ["a", "b"]}, True),  # eq compares whole values
        ({"path": "features.tags", "eq": "a"}, False),
        ({"path": "features.tags", "contains": "a"}, True),
        ({"path": "features.plan", "contains": "ro"}, True),
        ({"path": "features.plan", "matches": "p.o"}, True),
        ({"path": "features.plan", "matches": "p"}, False),  # the whole text must match
        ({"path": "properties.a.b", "eq": 1}, True),  # the literal key "a.b" first ...
        ({"path": "properties.a.c.1", "eq": 20}, True),  # ... then segments; a digit indexes a list
        ({"path": "properties.seen", "within": "7d"}, True),
        ({"path": "properties.seen", "within": "2d"}, False),
        ({"path": "properties.seen", "older_than": "2d"}, True),
        ({"path": "features.plan", "within": "7d"}, False),  # not a timestamp
        ({"features.orders": {"gte": 1}, "persona": "builder"}, True),  # one test per path
        ({"features.orders": {"gte": 1}, "persona": "maker"}, False),
        ({"all": []}, True),
        ({"any": []}, False),
        ({"any": [{"persona": "maker"}, {"not": {"path": "features.vip", "eq": False}}]}, True),
        ({"answer": "goals", "equals": "grow"}, True),  # the policy forms
        ({"answer": "stage", "in": ["idea", "building"]}, True),
        ({"answer": "missing", "answered": False}, True),
        ({"score": "readiness", "gte": 2}, True),
        ({"persona": ["maker", "builder"]}, True),
        ({"feature": "orders", "lt": 5}, True),
        ({"path": "entitlements", "contains": "course:intro"}, True),
    ],
)
def test_semantics(data: object, expected: bool) -> None:
    assert holds(data) is expected
    assert holds({"not": data}) is (not expected)
    assert evaluate(parse(to_data(parse(data))), FACTS, now=NOW) is expected  # the canonical form round-trips


def test_a_future_timestamp_is_not_within_the_past_days() -> None:
    future = (NOW + timedelta(hours=1)).isoformat()
    assert holds({"path": "properties.t", "within": "7d"}, properties={"t": future}) is False
    assert holds({"path": "properties.t", "within": "7d"}, properties={"t": NOW - timedelta(days=7)}) is True
    assert (
        holds({"path": "properties.t", "within": "7d"}, properties={"t": "2026-12-06T12:00:00"}) is False
    )  # naive


def test_where_form_reads_below_its_root() -> None:
    condition = parse_where({"plan": "pro", "a.c.0": {"gte": 10}}, root="properties")
    assert condition == All(
        (Leaf("properties.plan", (("eq", "pro"),)), Leaf("properties.a.c.0", (("gte", 10),)))
    )
    assert evaluate(condition, {"properties": {"plan": "pro", "a": {"c": [10]}}}) is True
    assert parse_where(None, root="properties") == All(())


def test_describe_gives_the_reason_in_words() -> None:
    assert describe(parse({"path": "features.orders", "gte": 1, "lt": 5})) == (
        "features.orders >= 1 and features.orders < 5"
    )
    assert describe(
        parse({"any": [{"persona": ["a", "b"]}, {"not": {"answer": "stage", "answered": True}}]})
    ) == ("(persona in [a, b] or not answers.stage exists)")
    assert (
        describe(parse({"path": "properties.seen", "older_than": "48h"})) == "properties.seen older than 2d"
    )


def test_every_problem_is_reported_at_once_with_hints() -> None:
    with pytest.raises(ConditionError) as caught:
        parse({"all": [{"path": "features.x", "gte": "a", "betwen": [1, 2]}, {"featurs.y": 1}, {"not": 3}]})
    assert caught.value.problems == (
        (
            "all[0].betwen",
            "unknown operator (did you mean 'between'?) (one of eq, ne, gt, gte, lt, lte, between, in, not_in, exists, contains, matches, within, older_than)",
        ),
        (
            "all[1].featurs.y",
            "unknown root 'featurs' (did you mean 'features'?): a path starts with one of traits, features, persona, answers, scores, entitlements, properties, event",
        ),
        ("all[2].not", "must be a non-empty mapping, got 3"),
    )


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"path": "features.x", "in": []}, ("in", "must be a list of 1 to 1000 values, got []")),
        ({"path": "features.x", "between": [3, 1]}, ("between", "lower bound 3 is above upper bound 1")),
        (
            {"path": "features.x", "matches": "("},
            (
                "matches",
                "invalid regular expression '(': missing ): ( (RE2 syntax: no lookaround, no backreferences)",
            ),
        ),
        (
            {"path": "features.x", "within": "soon"},
            ("within", "must be a duration such as 30m, 12h, 7d or 2w, got 'soon'"),
        ),
        (
            {"path": "features.x", "eq": float("nan")},
            ("eq", "must be a JSON value (finite numbers), got nan"),
        ),
        ({"path": "features.x", "exists": "yes"}, ("exists", "must be true or false, got 'yes'")),
        ({"all": [1], "any": []}, ("", "'all' must be alone in its mapping, got ['all', 'any']")),
        (
            {"path": "features.x"},
            (
                "",
                "no operator given (one of eq, ne, gt, gte, lt, lte, between, in, not_in, exists, contains, matches, within, older_than)",
            ),
        ),
    ],
)
def test_bad_operands(data: object, problem: tuple[str, str]) -> None:
    with pytest.raises(ConditionError) as caught:
        parse(data)
    assert caught.value.problems == (problem,)


def test_a_scope_limits_what_a_config_may_read() -> None:
    scope = Scope(roots=frozenset({"answers", "scores", "persona"}))
    assert parse({"answer": "stage", "equals": "idea"}, scope=scope) == Leaf(
        "answers.stage", (("in", ("idea",)),)
    )
    with pytest.raises(ConditionError) as caught:
        parse({"any": [{"feature": "orders", "gte": 1}, {"path": "traits.plan", "eq": "x"}]}, scope=scope)
    assert caught.value.problems == (
        ("any[0].feature", "'feature' cannot be used here (this config reads persona, answers, scores)"),
        ("any[1].path", "'traits' cannot be read here (this config reads persona, answers, scores)"),
    )


def test_depth_and_size_are_bounded() -> None:
    deep: object = {"path": "features.x", "eq": 1}
    for _ in range(20):
        deep = {"not": deep}
    with pytest.raises(ConditionError, match="nested deeper than 16 levels"):
        parse(deep)
    with pytest.raises(ConditionError, match="more than 1000 conditions"):
        parse({"all": [{"path": "features.x", "eq": i} for i in range(1001)]})


def test_leaves_resolve_and_structure() -> None:
    condition = parse({"all": [{"persona": "a"}, {"not": {"any": [{"feature": "f", "eq": 1}]}}]})
    assert condition == All((Leaf("persona", (("eq", "a"),)), Not(Any_((Leaf("features.f", (("eq", 1),)),)))))
    assert [leaf.path for leaf in leaves(condition)] == ["persona", "features.f"]
    assert resolve(FACTS, "properties.a.c.0") == 10
    assert resolve(FACTS, "properties.nope") is MISSING
    assert resolve(FACTS, "persona") == "builder"


def test_matches_runs_in_linear_time_and_refuses_what_would_not() -> None:
    # "(a+)+$" backtracks exponentially in a backtracking engine: 60 a's and a "!" would never finish.
    hostile = {"properties": {"plan": "a" * 60 + "!"}}
    assert evaluate(parse({"path": "properties.plan", "matches": "(a+)+$"}), hostile) is False
    assert evaluate(parse({"path": "properties.plan", "matches": "(a+)+!"}), hostile) is True
    for pattern in (r"(a)\1", "(?=a)a", "(?<!b)a"):
        with pytest.raises(ConditionError, match="RE2 syntax: no lookaround, no backreferences"):
            parse({"path": "properties.plan", "matches": pattern})
