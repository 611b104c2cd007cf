"""The declarative-config toolkit: documents with lines, every problem at once, hints, versions, types."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

import pytest
import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from offerloop.core.conditions import PropertiesWhere, Where
from offerloop.declarative import (
    AwareDatetime,
    ConfigError,
    Count,
    Document,
    Location,
    Problem,
    Reporter,
    Text,
    content_version,
    format_path,
    load_document,
    matching,
    one_of,
    parse_path,
    problem_at,
    show,
    validate,
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Price(_Strict):
    amount: Count
    currency: Literal["USD", "EUR"]


class Book(_Strict):
    kind: Literal["book"]
    title: Text
    price: Price = Field(description="what it costs")


class Course(_Strict):
    kind: Literal["course"]
    title: Text
    price: Price
    lessons: Count


class Shop(_Strict):
    name: Annotated[str, matching(r"[a-z]+", "a lowercase name")]
    opens_at: AwareDatetime | None = None
    items: list[Annotated[Book | Course, Field(discriminator="kind")]]

    @model_validator(mode="after")
    def _some_course(self) -> Shop:
        if not any(isinstance(item, Course) for item in self.items):
            raise problem_at(("items",), "a shop sells at least one course")
        return self


class ShopError(ConfigError):
    code = "invalid_shop"


def problems(text: str, file: str = "shop.yaml") -> list[str]:
    with pytest.raises(ShopError) as caught:
        validate(Shop, load_document(text, file=file), error=ShopError)
    assert caught.value.status_code == 422
    assert caught.value.code == "invalid_shop"
    return caught.value.problems


GOOD = """\
name: corner
opens_at: "2026-03-02T17:00:00+01:00"
items:
  - {kind: book, title: Pricing, price: {amount: 900, currency: USD}}
  - kind: course
    title: Launch
    price: {amount: 4900, currency: EUR}
    lessons: 5
"""


def test_a_valid_document_gives_the_model() -> None:
    shop = validate(Shop, load_document(GOOD, file="shop.yaml"))
    assert shop.opens_at == datetime(2026, 3, 2, 16, 0, tzinfo=UTC)
    assert [type(item).__name__ for item in shop.items] == ["Book", "Course"]


def test_every_path_has_its_line_and_column() -> None:
    doc = load_document(GOOD, file="shop.yaml")
    assert doc.parsed and doc.problems == []
    assert doc.locations[("name",)] == Location(1, 1)
    assert doc.locations[("items", 0)] == Location(4, 5)
    assert doc.locations[("items", 0, "price", "currency")] == Location(4, 55)
    assert doc.locations[("items", 1, "lessons")] == Location(8, 5)
    # A path that is not in the document is placed at its nearest located parent.
    assert doc.line(("items", 1, "price", "nope")) == 7


def test_every_problem_at_once_with_tags_hidden_hints_and_file_order() -> None:
    text = """\
name: Corner
opens_at: "2026-03-02T17:00:00"
items:
  - {kind: book, title: "  ", price: {amount: 9.5, currency: usd}, priec: 1}
  - kind: corse
  - kind: course
    title: Launch
    price: {amount: 0, currency: EUR}
  - kind: book
    title: Extra
    price: {amount: 1, currency: USD}
    lessons: 3
"""
    assert problems(text) == [
        "shop.yaml:1: name: must be a lowercase name, got 'Corner'",
        "shop.yaml:2: opens_at: needs a time zone (add Z or an offset such as +01:00), got '2026-03-02T17:00:00'",
        "shop.yaml:4: items[0].title: must not be empty, got '  '",
        "shop.yaml:4: items[0].price.amount: must be an integer, got 9.5",
        "shop.yaml:4: items[0].price.currency: must be one of USD, EUR, got 'usd' (did you mean 'USD'?)",
        "shop.yaml:4: items[0].priec: unknown key 'priec' (did you mean 'price'?)",
        "shop.yaml:5: items[1].kind: must be one of book, course, got 'corse' (did you mean 'course'?)",
        "shop.yaml:6: items[2]: missing required key 'lessons' for kind course",
        "shop.yaml:8: items[2].price.amount: must be at least 1, got 0",
        "shop.yaml:12: items[3].lessons: unknown key 'lessons' for kind book (only for kind course)",
    ]


def test_missing_keys_carry_their_description() -> None:
    assert problems("name: corner\nitems:\n  - {kind: book, title: T}\n  - {title: U}\n") == [
        "shop.yaml:3: items[0]: missing required key 'price' (what it costs)",
        "shop.yaml:4: items[1]: missing required key 'kind' (one of book, course)",
    ]


def test_a_model_validator_reports_below_its_model() -> None:
    text = "name: corner\nitems:\n  - {kind: book, title: T, price: {amount: 1, currency: USD}}\n"
    assert problems(text) == ["shop.yaml:2: items: a shop sells at least one course"]


def test_duplicate_keys_name_both_lines_and_validation_still_runs() -> None:
    text = GOOD.replace("opens_at:", "name: second\nopens_at:").replace("lessons: 5", "lessons: 0")
    assert problems(text) == [
        "shop.yaml:2: name: duplicate key 'name' (first at line 1)",
        "shop.yaml:9: items[1].lessons: must be at least 1, got 0",
    ]


def test_check_reports_cross_entry_problems() -> None:
    def check(shop: Shop, report: Reporter) -> None:
        titles: dict[str, int] = {}
        for index, item in enumerate(shop.items):
            if item.title in titles:
                first = report.line(("items", titles[item.title], "title"))
                report(("items", index, "title"), f"title {item.title!r} is taken (line {first})")
            titles.setdefault(item.title, index)

    text = GOOD.replace("title: Launch", "title: Pricing")
    with pytest.raises(ConfigError) as caught:
        validate(Shop, load_document(text, file="s.yaml"), check=check)
    assert caught.value.problems == ["s.yaml:6: items[1].title: title 'Pricing' is taken (line 4)"]
    assert caught.value.details == [
        {
            "path": "s.yaml",
            "line": 6,
            "location": "items[1].title",
            "message": "title 'Pricing' is taken (line 4)",
        }
    ]


def test_json_documents_have_lines_and_duplicate_keys() -> None:
    text = '{\n\t"name": "corner",\n\t"name": "x",\n\t"items": [\n\t\t{"kind": "book", "title": 5}\n\t]\n}'
    assert problems(text, "shop.json") == [
        "shop.json:3: name: duplicate key 'name' (first at line 2)",
        "shop.json:5: items[0].title: must be a string, got 5",
        "shop.json:5: items[0]: missing required key 'price' (what it costs)",
    ]
    assert problems('{"name": [', "shop.json") == ["shop.json:1: invalid JSON (column 11): Expecting value"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "shop.yaml:1: the document is empty"),
        ("- 1\n", "shop.yaml:1: must be a mapping, got [1]"),
        ("a: [1\n", "shop.yaml:2: invalid YAML (column 1): expected ',' or ']', but got '<stream end>'"),
        ("a: 1\n---\nb: 2\n", "shop.yaml:2: invalid YAML (column 1): expected a single document in the stream "
         "but found another document"),
        ("a: " + "[" * 100 + "]" * 100, "shop.yaml:1: invalid YAML (column 67): the document is nested deeper "
         "than 64 levels"),
        ("a: " + "9" * 5000, "shop.yaml:1: invalid YAML: a number with more digits than can be read (at most 4300)"),
        ("a: b\x07\n", "shop.yaml:1: invalid YAML: unacceptable character #x0007: special characters are not "
         'allowed\n  in "<unicode string>", position 4'),
    ],
)  # fmt: skip
def test_unreadable_text_is_one_problem_with_its_line(text: str, expected: str) -> None:
    assert problems(text) == [expected]


def test_alias_bombs_are_refused_before_anything_walks_them() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    doc = load_document("\n".join(lines) + "\n", file="bomb.yaml")
    assert not doc.parsed
    assert [str(p) for p in doc.problems] == [
        "bomb.yaml:1: aliases (*name) expand the document to more than 10 times its size"
    ]
    # A few aliases (shared defaults) are fine.
    small = load_document("d: &d {a: 1}\nx: *d\ny: *d\n", file="ok.yaml")
    assert small.parsed and small.data == {"d": {"a": 1}, "x": {"a": 1}, "y": {"a": 1}}


def test_dates_stay_text_and_front_matter_lines_are_file_lines() -> None:
    doc = load_document("when: 2026-01-01\nwho: [a, b]\n", file="x.md", first_line=2)
    assert doc.data == {"when": "2026-01-01", "who": ["a", "b"]}
    assert doc.line(("who", 1)) == 3


def test_format_path_tells_keys_from_indexes_with_the_data() -> None:
    data = {"offers": [{"prices": {840: 1}}]}
    assert format_path(("offers", 0, "prices", 840), data) == "offers[0].prices.840"
    assert format_path(("offers", 0, "prices", 840)) == "offers[0].prices[840]"


def test_problem_text_and_dict() -> None:
    problem = Problem("a.yaml", 3, "x.y", "bad")
    assert str(problem) == "a.yaml:3: x.y: bad"
    assert str(Problem("a.yaml", 1, "", "empty")) == "a.yaml:1: empty"
    assert problem.to_dict() == {"path": "a.yaml", "line": 3, "location": "x.y", "message": "bad"}


def test_content_version_is_canonical() -> None:
    assert content_version({"b": 1, "a": "é"}) == content_version({"a": "é", "b": 1})
    assert content_version({"a": 1}) != content_version({"a": 2})
    # sha256 of '{"a":"é","b":1}' (sorted keys, compact separators, UTF-8 not escaped), first 16 hex digits
    assert content_version({"b": 1, "a": "é"}) == "aa58fba8483623be"
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        content_version({"a": float("nan")})


def test_show_is_bounded_for_huge_and_shared_values() -> None:
    shared: list[object] = ["x" * 10]
    for _ in range(40):
        shared = [shared] * 10  # 10**40 leaves if spelled out
    assert show(shared) == "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[['xxxxxxxxxx'], [..."
    assert show("y" * 1000) == "'" + "y" * 56 + "..."
    assert show({"a": (1,)}) == "{'a': (1,)}"
    assert show(10**5000) == "<a number too long to show>"


# --------------------------------------------------------------------------------------------------
# Data without text, conditions, choices, defaults


def _one_or_many(value: object) -> object:
    return [value] if isinstance(value, dict) else value


class Rule(_Strict):
    channel: Annotated[str, one_of(("email", "push", "sms"), fold_case=True)]
    where: PropertiesWhere = Field(default_factory=lambda: Where.of(None, "properties"))
    at_most: Annotated[float, Field(le=1)] = 1.0


class Rules(_Strict):
    rules: Annotated[list[Rule], BeforeValidator(_one_or_many)]


RULES_YAML = """\
rules:
  - channel: Push
  - channel: emial
    where:
      plan.tier: {eqq: pro}
      score: {gte: 70, betwen: [1, 2]}
      "": 1
  - channel: sms
    at_most: 2
"""


def _rule_problems(doc: Document) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        validate(Rules, doc)
    return caught.value.problems


def test_condition_problems_are_each_at_their_own_path_and_line() -> None:
    ops = "eq, ne, gt, gte, lt, lte, between, in, not_in, exists, contains, matches, within, older_than"
    found = _rule_problems(load_document(RULES_YAML, file="rules.yaml"))
    assert found == [
        "rules.yaml:3: rules[1].channel: must be one of email, push, sms, got 'emial' (did you mean 'email'?)",
        # the empty key is the condition's own path "": its problem is at the mapping
        "rules.yaml:4: rules[1].where: invalid path '' (empty segment)",
        f"rules.yaml:5: rules[1].where.plan.tier.eqq: unknown operator (did you mean 'eq'?) (one of {ops})",
        f"rules.yaml:6: rules[1].where.score.betwen: unknown operator (did you mean 'between'?) (one of {ops})",
        "rules.yaml:9: rules[2].at_most: must be at most 1, got 2",
    ]
    # The same data already parsed: the same problems, without file or lines.
    data = yaml.safe_load(RULES_YAML)
    # (in the order found: no lines to sort by)
    assert sorted(_rule_problems(Document.of(data))) == sorted(line.split(": ", 1)[1] for line in found)
    assert _rule_problems(Document.of(data, file="<body>"))[0] == "<body>: " + found[0].split(": ", 1)[1]


def test_one_item_given_for_a_list_is_reported_without_an_index() -> None:
    text = "rules:\n  channel: push\n  where: {a: {gtt: 1}}\n"
    assert _rule_problems(load_document(text, file="r.yaml")) == [
        "r.yaml:3: rules.where.a.gtt: unknown operator (did you mean 'gt'?) (one of eq, ne, gt, gte, lt, lte, "
        "between, in, not_in, exists, contains, matches, within, older_than)"
    ]
    assert validate(Rules, load_document("rules: {channel: SMS}")).rules[0].channel == "sms"


def test_a_default_for_an_empty_document_and_keys_that_are_not_text() -> None:
    fallback = Rules(rules=[])
    assert validate(Rules, load_document("# nothing\n"), default=fallback) is fallback
    assert validate(Rules, Document.of(None), default=fallback) is fallback
    with pytest.raises(ConfigError) as caught:
        validate(Rules, load_document("rules: [\n"), default=fallback)  # broken text is no default
    assert caught.value.problems == [
        "<string>:2: invalid YAML (column 1): expected the node content, but found '<stream end>'"
    ]
    assert _rule_problems(Document.of(None)) == ["the document is empty"]
    assert _rule_problems(Document.of({"rules": [], 3: 4})) == ["3: unknown key 3 (a key must be text)"]


def test_parse_path_reads_what_format_path_writes() -> None:
    data = {"rules": [{"where": {"plan.tier": {"eq": 1}, "plan": {"x": 1}}}]}
    assert parse_path("rules[0].where.plan.tier.eq", data) == ("rules", 0, "where", "plan.tier", "eq")
    assert parse_path("rules[0].where.plan.x", data) == ("rules", 0, "where", "plan", "x")
    assert parse_path("a.b[2].c") == ("a", "b", 2, "c")
    assert parse_path("") == ()
    assert parse_path(".a", {".a": 1}) == (".a",)
    path = ("rules", 0, "where", "plan.tier", "eq")
    assert parse_path(format_path(path, data), data) == path


def test_problems_without_lines_read_and_sort() -> None:
    assert str(Problem("", 0, "a.b", "bad")) == "a.b: bad"
    assert str(Problem("", 0, "", "bad")) == "bad"
    assert str(Problem("<body>", 0, "a", "bad")) == "<body>: a: bad"
    assert Problem("", 0, "a", "bad").to_dict() == {
        "path": None,
        "line": None,
        "location": "a",
        "message": "bad",
    }


def test_a_nul_in_a_quoted_scalar_or_key_is_a_problem_at_its_line() -> None:
    doc = load_document('a: "x\\0"\nb:\n  - "\\x00"\n"c\\0": 1\nd: fine\n', file="f.yaml")
    assert [str(p) for p in doc.problems] == [
        "f.yaml:1: a: text with a NUL character (\\0) cannot be stored",
        "f.yaml:3: b[0]: text with a NUL character (\\0) cannot be stored",
        "f.yaml:4: text with a NUL character (\\0) cannot be stored",
    ]
