"""`offerloop review` (issue 9 item 5): the queue, the whole document with its diff, approve / edit / reject."""

from __future__ import annotations

import json

from tests.assembly.test_artifacts_api import ATOMS, POLICY, QUIZ
from typer.testing import CliRunner

from offerloop.assembly import service as assembly_service
from offerloop.checkout import service as checkout_service
from offerloop.cli.common import database
from offerloop.cli.main import app
from offerloop.config import Settings
from offerloop.content import service as content_service

runner = CliRunner()


def run(*args: str, code: int = 0):
    out = runner.invoke(app, list(args), catch_exceptions=False)
    assert out.exit_code == code, out.stdout + out.stderr
    return out


def test_review_from_the_command_line(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'review.db'}"
    monkeypatch.setenv("OFFERLOOP_DATABASE_URL", url)
    monkeypatch.setenv("OFFERLOOP_REVIEWER", "rita@creator")
    monkeypatch.setenv("OFFERLOOP_PUBLIC_URL", "https://studio.example")
    ws = json.loads(run("workspace", "create", "R", "--json").stdout)["id"]
    with database(Settings(database_url=url)) as db:
        with db.write() as session:
            for name, text in ATOMS.items():
                content_service.put_atom(session=session, workspace_id=ws, text=text, path=f"{name}.md")
            content_service.put_quiz(session=session, workspace_id=ws, text=QUIZ)
            assembly_service.put_policy(
                session=session, workspace_id=ws, text=POLICY.replace("{REVIEW}", "always")
            )
            buyer = checkout_service.buyer_for(
                session=session, workspace_id=ws, user_id="w1", email="w1@example.com"
            )
            art = assembly_service.request_artifact(session=session, workspace_id=ws, buyer_id=buyer,
                                                    policy_id="starter-workbook")["id"]  # fmt: skip
        assembly_service.run_pending(db=db)

    listed = run("review", "list", "-w", ws).stdout.splitlines()
    assert listed[0].startswith(f"{art} v1  buyer user_id=w1, email=w1@example.com  policy starter-workbook@")
    assert listed[1:] == ["    - policy requires review", "1 waiting for review"]

    shown = run("review", "show", "-w", ws, art, "--html", str(tmp_path / "v1.html")).stdout
    assert "[start/0] Welcome, friend — atom welcome@" in shown
    assert (
        "[path/0] Next — policy text (fallback)" in shown
        and "[pricing/0] Anchor your price — atom price-anchor@" in shown
    )
    assert (
        "    Pick one small step." in shown
        and "preview (HTML, reviewer only): https://studio.example/v1/reviews/" in shown
    )
    assert "Pick one small step." in (tmp_path / "v1.html").read_text()

    run("review", "edit", "-w", ws, art, "--block", "nowhere", code=2)
    bad = run("review", "edit", "-w", ws, art, "--block", "nowhere/3=x", code=1)
    assert "error [invalid_edits]" in bad.stderr
    (tmp_path / "edit.md").write_text("Charge for the first call.\n")
    out = run(
        "review",
        "edit",
        "-w",
        ws,
        art,
        "--block",
        "pricing/0=@" + str(tmp_path / "edit.md"),
        "--version",
        "1",
    )
    assert out.stdout.strip() == f"{art} v1: queued"
    assert run("worker", "--once").stdout.startswith("1 artifact versions rendered")
    assert run("review", "list", "-w", ws).stdout.strip() == "0 waiting for review"

    # a content change regenerates it: back in the queue with the edit carried and the diff shown
    with database(Settings(database_url=url)) as db, db.write() as session:
        content_service.put_atom(session=session, workspace_id=ws,
                                 text=ATOMS["welcome"].replace("This workbook", "Your workbook"))  # fmt: skip
    run("artifacts", "regenerate", "-w", ws)
    run("worker", "--once")
    shown = run("review", "show", "-w", ws, art).stdout
    assert "needs review: regenerated after review: v1 was edited" in shown
    assert "reviewer edit on pricing/0 by rita@creator (v1): kept" in shown
    assert "    Charge for the first call." in shown
    assert "diff against v1 (edited by rita@creator):" in shown
    assert "  block start/0: changed" in shown and "+Your workbook follows your answers" in shown
    detail = json.loads(run("review", "show", "-w", ws, art, "--json").stdout)
    assert detail["version"] == 2 and detail["diff"]["atoms"][0]["id"] == "welcome"

    assert run("review", "reject", "-w", ws, art, "--note", "not yet").stdout.strip() == f"{art} v2: rejected"
    again = run("review", "approve", "-w", ws, art, code=1)
    assert "error [invalid_review]" in again.stderr
    saved = run("artifacts", "save", "-w", ws, art, str(tmp_path / "out.md"), "--format", "markdown")
    assert saved.exit_code == 0 and "Charge for the first call." in (tmp_path / "out.md").read_text()
    assert "Your workbook" not in (tmp_path / "out.md").read_text()  # the rejected v2 is never what is saved
