"""`offerloop content|quiz|policy|artifacts|worker` on a SQLite file, with the demo corpus."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from offerloop.cli.main import app

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo"
runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_corpus_quiz_and_policy_from_the_command_line(tmp_path, monkeypatch):
    monkeypatch.setenv("OFFERLOOP_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    import json

    ws = json.loads(run("workspace", "create", "CLI", "--json").stdout)["id"]
    out = run("content", "sync", "-w", ws, str(DEMO / "content"))
    assert out.exit_code == 0 and out.stdout.startswith("81 added, 0 changed, 0 unchanged, 0 retired")
    again = run("content", "sync", "-w", ws, str(DEMO / "content"))
    assert again.stdout.startswith("0 added, 0 changed, 81 unchanged, 0 retired")
    assert run("quiz", "load", "-w", ws, str(DEMO / "quizzes" / "intake.yaml")).stdout.startswith(
        "quiz intake version "
    )
    loaded = run("policy", "load", "-w", ws, str(DEMO / "policies" / "launch-workbook.yaml"))
    assert loaded.exit_code == 0 and "error:" not in loaded.stdout
    lint = run("policy", "lint", str(DEMO / "policies" / "pricing-audit.yaml"), "-w", ws)
    assert lint.exit_code == 0 and lint.stdout.strip().endswith("0 errors, 0 warnings")


def test_policy_lint_finds_unfillable_slots_and_unreachable_sections(tmp_path):
    policy = tmp_path / "p.yaml"
    policy.write_text(
        "id: p\ntitle: T\nsections:\n"
        "  - key: a\n    title: A\n    slots:\n      - key: s\n        tags_any: [no-such-tag]\n"
        "        fallback: {markdown: x}\n"
        "  - key: b\n    title: B\n    when: {answer: stage, equals: retired}\n    slots:\n"
        "      - key: t\n        tags_any: [pricing]\n        fallback: {markdown: y}\n"
    )
    out = runner.invoke(app, ["policy", "lint", str(policy), "--corpus", str(DEMO / "content"),
                              "--quiz", str(DEMO / "quizzes" / "intake.yaml")])  # fmt: skip
    assert out.exit_code == 1
    assert out.stdout.strip().splitlines() == [
        f"{policy}:7: error: sections[0].slots[0]: can never be filled: no atom passes its filters "
        "(tags_any no-such-tag); the fallback is always used",
        f"{policy}:10: error: sections[1]: condition value 'retired' is not an option of question 'stage' "
        "(options: idea, building, launching, selling)",
        "2 errors, 0 warnings",
    ]


def test_content_check_names_file_and_line(tmp_path):
    (tmp_path / "bad.md").write_text("---\nid: Bad Id\ntitle: T\nkind: lesson\n---\nBody\n")
    out = runner.invoke(app, ["content", "check", str(tmp_path)])
    assert out.exit_code == 1
    assert "bad.md:2:" in out.stderr


def test_worker_once_renders_what_is_queued_and_delivers_paid_components(tmp_path, monkeypatch):
    from tests.checkout.test_checkout_flow import CATALOG

    from offerloop.assembly import service as assembly_service
    from offerloop.checkout import service as checkout_service
    from offerloop.cli.common import database
    from offerloop.config import Settings
    from offerloop.content import service as content_service
    from offerloop.content.atoms import load_corpus
    from offerloop.offers import service as offers_service

    url = f"sqlite:///{tmp_path / 'worker.db'}"
    monkeypatch.setenv("OFFERLOOP_DATABASE_URL", url)
    import json

    ws = json.loads(run("workspace", "create", "W", "--json").stdout)["id"]
    with database(Settings(database_url=url)) as db, db.write() as session:
        atoms, _ = load_corpus(DEMO / "content")
        content_service.sync(session=session, workspace_id=ws, atoms=atoms)
        content_service.put_quiz(
            session=session, workspace_id=ws, text=(DEMO / "quizzes" / "intake.yaml").read_text()
        )
        assembly_service.put_policy(
            session=session, workspace_id=ws, text=(DEMO / "policies" / "pricing-audit.yaml").read_text()
        )
        offers_service.load_catalog(session=session, workspace_id=ws, text=CATALOG)
        buyer = checkout_service.buyer_for(session=session, workspace_id=ws, user_id="w1")
        order = checkout_service.begin(
            session=session, workspace_id=ws, buyer_id=buyer, offer_key="sales-page-teardown", currency="USD"
        )
        checkout_service.mark_paid(session=session, workspace_id=ws, order_id=order.id, actor="t")
    # fulfilment queues the paid micro-offer's personalized deliverable; the same pass renders it (the other
    # jobs: the order's invoice announced, and the decision and pipeline work the order's events bring)
    assert run("worker", "--once").stdout.strip() == (
        "1 artifact versions rendered, 1 fulfilment tasks run, 3 other jobs run"
    )
    assert run("worker", "--once").stdout.strip() == "0 artifact versions rendered, 0 fulfilment tasks run"
