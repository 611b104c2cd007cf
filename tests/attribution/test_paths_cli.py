"""`offerloop attribution paths FILE …` on files written here: the interface shape and its refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from offerloop.cli.main import app

runner = CliRunner()

FULL = "path;total_conversions;total_conversion_value;total_null\nA > B;1;10;0\nB;1;20;1\nA;0;0;1\n"
OPTIONS = ("--sep", ";", "--path-col", "path", "--conv-col", "total_conversions",
           "--value-col", "total_conversion_value", "--null-col", "total_null", "--path-sep", ">")  # fmt: skip


def _run(tmp_path: Path, text: str, *args: str) -> tuple[int, str, str]:
    f = tmp_path / "paths.csv"
    f.write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["attribution", "paths", str(f), *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_markov_json_has_the_interface_shape(tmp_path: Path) -> None:
    code, out, _ = _run(tmp_path, FULL, *OPTIONS, "--model", "markov", "--json")
    assert code == 0
    got = json.loads(out)
    assert list(got) == ["model", "channels"]
    assert got["model"] == "markov"
    assert [list(c) for c in got["channels"]] == [["channel", "conversions", "value", "removal_effect"]] * 2
    by = {c["channel"]: c for c in got["channels"]}
    assert by["A"]["conversions"] == pytest.approx(0.5, rel=1e-12)
    assert by["A"]["value"] == pytest.approx(7.5, rel=1e-12)
    assert by["A"]["removal_effect"] == pytest.approx(1 / 3, rel=1e-12)
    assert by["B"]["conversions"] == pytest.approx(1.5, rel=1e-12)
    assert by["B"]["removal_effect"] == pytest.approx(1.0, rel=1e-12)


@pytest.mark.parametrize(
    ("model", "a", "b"),
    [("first", (1, 10), (1, 20)), ("last", (0, 0), (2, 30)), ("linear", (0.5, 5), (1.5, 25)),
     ("position", (0.5, 5), (1.5, 25)), ("shapley", (0.5, 5), (1.5, 25))],
)  # fmt: skip
def test_other_models_have_no_removal_effect(
    tmp_path: Path, model: str, a: tuple[float, float], b: tuple[float, float]
) -> None:
    code, out, _ = _run(tmp_path, FULL, *OPTIONS, "--model", model, "--json")
    assert code == 0
    got = json.loads(out)
    assert got["model"] == model
    assert [(c["channel"], c["conversions"], c["value"], c["removal_effect"]) for c in got["channels"]] == [
        ("A", a[0], a[1], None),
        ("B", b[0], b[1], None),
    ]


def test_time_decay_counts_ages_in_touches_from_the_end(tmp_path: Path) -> None:
    code, out, _ = _run(tmp_path, "path,total_conversions\nA>B>C>B,1\n", "--model", "time_decay",
                        "--half-life", "1", "--json")  # fmt: skip
    assert code == 0
    got = {c["channel"]: c["conversions"] for c in json.loads(out)["channels"]}
    assert got == pytest.approx({"A": 1 / 15, "B": 2 / 3, "C": 4 / 15}, rel=1e-12)


def test_defaults_and_table_output(tmp_path: Path) -> None:
    code, out, _ = _run(tmp_path, "path,total_conversions\nx > y,2\n", "--model", "last")
    assert code == 0
    assert out.splitlines()[0] == "model: last"
    assert out.splitlines()[3].split() == ["y", "2.0000", "0.0000"]


@pytest.mark.parametrize(
    ("text", "args", "message"),
    [
        (FULL, ("--null-col", "total_null"), "no column 'path' (columns: path;total_conversions;"),
        (FULL, (*OPTIONS, "--conv-col", "conversions"), "no column 'conversions'"),
        ("", (), "the file is empty"),
        ("path,total_conversions\n", (), "the file has no data rows"),
        ("path,total_conversions\nA>B,two\n", (), "column 'total_conversions', data row 1: 'two' is not a number"),
        ("path,total_conversions\nA,1\nB,\n", (), "data row 2: '' is not a number"),
        ("path,total_conversions\nA,inf\n", (), "'inf' is not a number"),
        ("path,total_conversions\nA,-1\n", (), "data row 1: '-1' is negative"),
        ("path,total_conversions\n,1\n", (), "data row 1: the path is empty"),
        ("path,total_conversions\nA>>B,1\n", (), "an empty channel in 'A>>B'"),
        ("path,total_conversions\nA,1\n", ("--model", "u_shaped"), "unknown model 'u_shaped'"),
        # F11: absurd counts (nan removal effects before) and control characters inside channel names.
        ("path,total_conversions\nA>B,1e308\nB,1e308\n", ("--model", "markov"), "'1e308' is above 10^15"),
        ("path,total_conversions,v\nA,1,1e16\n", ("--value-col", "v"), "column 'v', data row 1: '1e16' is above"),
        ("path,total_conversions\nA\x00>B,3\n", (), "data row 1: a control character in 'A\\x00>B'"),
        ('path,total_conversions\nA,1\n"B\nnewline",1\n', (), "data row 2: a control character in 'B\\nnewline'"),
        ("path,total_conversions\nA,1\n", ("--model", "markov", "--order", "4"), "order must be 1 to 3"),
        ("path,total_conversions\nA,1\n", ("--sep", ";;"), "--sep must be one character"),
        ("path,total_conversions\n" + ">".join(f"c{i}" for i in range(16)) + ",1\n", ("--model", "shapley"),
         "at most 15 channels"),
    ],
)  # fmt: skip
def test_refusals_are_one_line_and_a_nonzero_exit(
    tmp_path: Path, text: str, args: tuple[str, ...], message: str
) -> None:
    code, out, err = _run(tmp_path, text, *args)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert message in err


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    result = runner.invoke(app, ["attribution", "paths", str(tmp_path / "nope.csv")], catch_exceptions=False)
    assert result.exit_code == 2
    assert "No such file" in result.stderr
