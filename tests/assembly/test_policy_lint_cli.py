"""`offerloop config lint` on a broken composition policy: every problem as ``file:line: path: message``."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from offerloop.cli.main import app

BROKEN = """\
id: launch
deliverable: workbok
title: Launch
reveiw: always
sections:
  - key: start
    title: Start
    when: {answer: stage, in: []}
    slots:
      - key: one
        kinds: [lessn]
        ordr: title
        level: {min: 0}
        fallback: {markdown: "Write it down."}
"""


def test_a_broken_policy_is_reported_line_by_line_with_hints(tmp_path: Path) -> None:
    file = tmp_path / "broken_policy.yaml"
    file.write_text(BROKEN, encoding="utf-8")
    result = CliRunner().invoke(app, ["config", "lint", str(file)], catch_exceptions=False)
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"{file}:2: deliverable: must be one of workbook, audit_report, course_pathway, got 'workbok' "
        "(did you mean 'workbook'?)",
        f"{file}:4: reveiw: unknown key 'reveiw' (did you mean 'review'?)",
        f"{file}:8: sections[0].when.in: must be a list of 1 to 1000 values, got []",
        f"{file}:11: sections[0].slots[0].kinds[0]: must be one of lesson, template, checklist, snippet, "
        "exercise, got 'lessn' (did you mean 'lesson'?)",
        f"{file}:12: sections[0].slots[0].ordr: unknown key 'ordr' (did you mean 'order'?)",
        f"{file}:13: sections[0].slots[0].level.min: must be at least 1, got 0",
    ]


def test_cross_entry_problems_once_the_entries_are_valid(tmp_path: Path) -> None:
    file = tmp_path / "policies" / "dupes.yaml"
    file.parent.mkdir()
    file.write_text(
        "id: p\ntitle: T\nsections:\n  - {key: a, title: A, intro: hi}\n  - {key: a, title: B, intro: hi}\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        app, ["config", "lint", "--kind", "policy", str(file)], catch_exceptions=False
    )
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"{file}:5: sections[1].key: duplicate section key 'a' (also sections[0])"
    ]
    file.write_text("id: p\ntitle: T\nsections:\n  - {key: a, title: A, intro: hi}\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["config", "lint", str(file)], catch_exceptions=False)
    assert (result.exit_code, result.output) == (0, f"{file}: ok (policy)\n")
