"""`offerloop config lint`: every config kind, broken files with exact lines, the demo's files clean."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from offerloop.cli.main import app

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def lint(*args: str) -> tuple[int, list[str]]:
    result = runner.invoke(app, ["config", "lint", *args], catch_exceptions=False)
    return result.exit_code, result.output.splitlines()


def write(tmp_path: Path, name: str, text: str | bytes) -> str:
    file = tmp_path / name
    file.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        file.write_bytes(text)
    else:
        file.write_text(text, encoding="utf-8")
    return str(file)


def test_every_example_file_lints_clean() -> None:
    files = sorted(
        str(p) for p in EXAMPLES.rglob("*") if p.suffix in (".yaml", ".md") and p.name != "README.md"
    )
    code, out = lint(*files)
    assert code == 0, out
    kinds = {line.rsplit("(", 1)[1].rstrip(")") for line in out}
    assert kinds == {
        "offers",
        "policy",
        "atom",
        "quiz",
        "signals",
        "features",
        "personas",
        "actions",
        "journey",
    }
    assert len(out) == len(files)
    assert f"{EXAMPLES}/demo/offers.yaml: ok (offers)" in out


BROKEN = {
    "journeys/welcome.yaml": (
        "name: welcome\ntrigger: {event: Signed Up, where: {features.orders: {gtee: 1}}}\nsteps:\n"
        "  - wait: soon\n  - send: {channel: email, text: hi}\n  - sned: {channel: inapp, text: x}\n",
        [
            "{f}:2: trigger.where.features.orders.gtee: unknown operator (did you mean 'gte'?) (one of eq, ne, gt, "
            "gte, lt, lte, between, in, not_in, exists, contains, matches, within, older_than)",
            "{f}:4: steps[0].wait: must be a duration such as 30m, 2h, 3d or 1w, got 'soon'",
            "{f}:6: steps[2]: a step is a mapping with exactly one of send, wait, wait_until, decide, branch, exit, "
            "got {{'sned': {{'channel': 'inapp', 'text': 'x'}}}}",
        ],
    ),
    "offers.yaml": (
        "offers:\n  - key: a\n    kind: product\n    title: A\n    prices: {USD: 1.5}\n    priec: 3\n",
        [
            "{f}:5: offers[0].prices.USD: must be an integer amount in minor units (e.g. 4900 for USD 49.00), "
            "got 1.5",
            "{f}:6: offers[0].priec: unknown key 'priec' (did you mean 'prices'?)",
        ],
    ),
    "policies/audit.yaml": (
        "id: audit\ndeliverable: audit_report\ntitle: Audit\nsections:\n  - key: start\n    title: Start\n"
        "    slots:\n      - key: one\n        choose: 0\n",
        [
            "{f}:8: sections[0].slots[0]: missing required key 'fallback' ({{title, markdown}} or "
            "{{atom: atom-id}})",
            "{f}:9: sections[0].slots[0].choose: must be at least 1, got 0",
        ],
    ),
    "atoms/a.md": (
        "---\nid: a\ntitle: t\nkind: lessn\nlevel: 9\n---\nBody\n",
        [
            "{f}:4: kind: must be one of lesson, template, checklist, snippet, exercise, got 'lessn' "
            "(did you mean 'lesson'?)",
            "{f}:5: level: must be at most 3, got 9",
        ],
    ),
    "signals.yaml": (
        "threshold: 0.5\nrules:\n  - event: Lesson Completed\n    weight: 2\n    where:\n"
        "      score: {gte: 70, betwen: 3}\n    wieght: 2\n    confidence: 2\n",
        [
            "{f}:6: rules[0].where.score.betwen: unknown operator (did you mean 'between'?) (one of eq, ne, gt, "
            "gte, lt, lte, between, in, not_in, exists, contains, matches, within, older_than)",
            "{f}:7: rules[0].wieght: unknown key 'wieght' (did you mean 'weight'?)",
            "{f}:8: rules[0].confidence: must be a number between 0 and 1, got 2",
        ],
    ),
    "features.yaml": (
        "features:\n  - {name: orders, kind: count}\n  - name: views\n    kind: decayed_count\n"
        "  - name: stage\n    kind: stagez\n",
        [
            "{f}:3: features[1]: missing required key 'half_life_days' for kind decayed_count",
            "{f}:6: features[2].kind: must be one of count, decayed_count, sum, latest, latest_object, "
            "first_value, last_value, distinct_count, min_delay_minutes, weekday_share, top_local_hour, "
            "recency_days, flag, stage, share, got 'stagez' (did you mean 'stage'?)",
        ],
    ),
    "personas.yaml": (
        "threshold: 0.5\npersonas:\n  - name: fan\n    signals:\n      - {feature: orders, gte: 1, weight: -2}\n"
        "  - name: Lurker\n    descripton: Reads everything\n    signals:\n      - {feature: views, gte: 1}\n",
        [
            "{f}:5: personas[0].signals[0].weight: must be more than 0, got -2",
            "{f}:6: personas[1].name: must be a persona name (lowercase letters, digits and '_', e.g. "
            "deal_seeker), got 'Lurker'",
            "{f}:7: personas[1].descripton: unknown key 'descripton' (did you mean 'description'?)",
        ],
    ),
    "quiz.yaml": ("id: q\ntitle: Q\nquestions: 5\n", ["{f}:3: questions must be a non-empty list, got 5"]),
    "actions.yaml": (
        "- key: a\n  kind: lessn\n  title: A\n",
        [
            "{f}:1: [0]: missing required key 'outcome'",
            "{f}:2: [0].kind: must be one of lesson, module, offer, coaching, prompt, got 'lessn' "
            "(did you mean 'lesson'?)",
        ],
    ),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_a_broken_file_of_each_kind_gives_every_problem_at_its_line(tmp_path: Path, name: str) -> None:
    text, expected = BROKEN[name]
    file = write(tmp_path, name, text)
    assert lint(file) == (1, [line.format(f=file) for line in expected])


def test_duplicate_keys_are_reported_for_kinds_whose_loader_ignores_them(tmp_path: Path) -> None:
    file = write(tmp_path, "signals.yaml", "threshold: 0.5\nthreshold: 0.7\n")
    assert lint(file) == (1, [f"{file}:2: threshold: duplicate key 'threshold' (first at line 1)"])


def test_kind_from_content_then_name_and_the_kind_option(tmp_path: Path) -> None:
    # The name says signals, the content says offers: the content wins.
    file = write(tmp_path, "signals.yaml", "offers: []\n")
    assert lint(file) == (1, [f"{file}:1: offers: must have at least 1 item, got 0"])
    # Nothing tells: the name does.
    file = write(tmp_path, "my-catalog.yaml", "{}\n")
    assert lint(file) == (1, [f"{file}:1: missing required key 'offers'"])
    file = write(tmp_path, "x.yaml", "{}\n")
    assert lint(file) == (
        1,
        [f"{file}:1: cannot tell which kind of config this is: pass --kind "
         "(offers, policy, atom, quiz, signals, features, personas, actions, journey)"],
    )  # fmt: skip
    assert lint("--kind", "signals", file) == (0, [f"{file}: ok (signals)"])
    result = runner.invoke(app, ["config", "lint", "--kind", "nope", file])
    assert result.exit_code == 2


def test_hostile_files_give_one_clear_problem(tmp_path: Path) -> None:
    cases = {
        "latin.yaml": (b"offers:\n  - key: caf\xe9\n", "{f}:2: not UTF-8 text (byte 20)"),
        "deep.yaml": ("offers: " + "[" * 200 + "]" * 200, "{f}:1: invalid YAML (column 72): the document is "
                      "nested deeper than 64 levels"),
        "deep.json": ('{"offers": ' + "[" * 50_000 + "]" * 50_000 + "}", "{f}:1: invalid JSON: nested deeper "
                      "than 64 levels"),
        "bomb.yaml": ("a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
            f"a{i}: &a{i} [{', '.join(['*a' if i == 1 else f'*a{i - 1}'] * 10)}]\n" for i in range(1, 9)
        ), "{f}:1: aliases (*name) expand the document to more than 10 times its size"),
        "int.json": ('{"offers": ' + "9" * 5000 + "}", "{f}:1: invalid JSON: a number with more digits than "
                     "can be read (at most 4300)"),
    }  # fmt: skip
    for name, (text, expected) in cases.items():
        file = write(tmp_path, name, text)
        assert lint("--kind", "offers", file) == (1, [expected.format(f=file)]), name
    missing = str(tmp_path / "nope.yaml")
    assert lint(missing) == (1, [f"{missing}: cannot be read: No such file or directory"])


def test_json_configs_of_the_ported_kinds_name_their_lines(tmp_path: Path) -> None:
    file = write(
        tmp_path,
        "rules.json",
        '{\n  "rules": [\n    {"weight": 1, "confidence": 1,\n     "where": {"plan.tier": {"eqq": "pro"}}}\n  ]\n}\n',
    )
    assert lint("--kind", "signals", file) == (
        1,
        [f"{file}:4: rules[0].where.plan.tier.eqq: unknown operator (did you mean 'eq'?) (one of eq, ne, gt, "
         "gte, lt, lte, between, in, not_in, exists, contains, matches, within, older_than)"],
    )  # fmt: skip
    file = write(tmp_path, "spec.json", '{"features": [\n  {"name": "n", "kind": "cuont"}\n]}\n')
    assert lint("--kind", "features", file)[1] == [
        f"{file}:2: features[0].kind: must be one of count, decayed_count, sum, latest, latest_object, "
        "first_value, last_value, distinct_count, min_delay_minutes, weekday_share, top_local_hour, "
        "recency_days, flag, stage, share, got 'cuont' (did you mean 'count'?)"
    ]
    # An empty signals or features file is the built-in default: clean. Empty persona templates are not.
    file = write(tmp_path, "empty.yaml", "# nothing yet\n")
    assert lint("--kind", "signals", file) == (0, [f"{file}: ok (signals)"])
    assert lint("--kind", "features", file) == (0, [f"{file}: ok (features)"])
    assert lint("--kind", "personas", file) == (
        1,
        [f"{file}:1: persona templates are empty (expected a mapping with a `personas` list)"],
    )
