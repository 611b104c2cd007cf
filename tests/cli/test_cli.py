from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from offerloop.cli.main import app
from offerloop.db.uow import Database
from offerloop.events import service as event_service
from offerloop.models import Buyer, Event

runner = CliRunner()


@pytest.fixture
def cli_env(tmp_path: Path, engine: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The CLI commits for real: a fresh SQLite file, or the PostgreSQL test database (own workspace)."""
    url = database_url if engine.dialect.name == "postgresql" else f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("OFFERLOOP_DATABASE_URL", url)
    monkeypatch.setenv("OFFERLOOP_LOG_LEVEL", "WARNING")
    return url


def _invoke(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), catch_exceptions=False)


def _workspace() -> dict[str, str]:
    result = _invoke("workspace", "create", "CLI Creator", "--json")
    assert result.exit_code == 0
    created = json.loads(result.stdout)
    assert sorted(created) == ["id", "secret_key", "write_key"]
    assert created["write_key"].startswith("wk_") and created["secret_key"].startswith("sk_")
    return created


def _db(url: str) -> Database:
    from offerloop.db.engine import make_engine

    return Database(make_engine(url))


BUYERS_CSV = """\
Customer ID,E-mail,First Name,Favourite Topic,Consent Marketing
c-1,  Ana@Example.com ,Ana,pricing,yes
c-2,bob@example,Bob,launches,no
c-3,cy@example.com,Cy,audience,maybe
,dee@example.com,Dee,pricing,y
"""


def test_import_buyers_reports_rows_and_is_idempotent(cli_env: str, tmp_path: Path) -> None:
    ws = _workspace()
    csv_path = tmp_path / "buyers.csv"
    csv_path.write_text(BUYERS_CSV)
    report = tmp_path / "errors.csv"

    dry = _invoke("import", "buyers", str(csv_path), "-w", ws["id"], "--dry-run")
    assert (
        "4 rows: would store 2, already imported 0, refused 2  (dry run: nothing was written)" in dry.stdout
    )
    db = _db(cli_env)
    with db.read() as session:
        assert (
            session.scalar(select(func.count()).select_from(Event).where(Event.workspace_id == ws["id"])) == 0
        )

    first = _invoke("import", "buyers", str(csv_path), "-w", ws["id"], "--report", str(report))
    assert first.exit_code == 1  # some rows were refused
    assert "4 rows: stored 2, already imported 0, refused 2" in first.stdout
    lines = report.read_text().splitlines()
    assert lines[0] == "row,column,code,message"
    assert [line.split(",")[:3] for line in lines[1:]] == [
        ["3", "E-mail", "invalid_email"],
        ["4", "Consent Marketing", "invalid_boolean"],
    ]
    again = _invoke("import", "buyers", str(csv_path), "-w", ws["id"])
    assert "4 rows: stored 0, already imported 2, refused 2" in again.stdout
    with db.read() as session:
        traits = {
            b.user_id: b.traits
            for b in session.scalars(
                select(Buyer).where(Buyer.workspace_id == ws["id"], Buyer.merged_into_id.is_(None))
            )
        }
    assert traits["c-1"] == {
        "email": "ana@example.com",
        "firstName": "Ana",
        "favourite_topic": "pricing",
        "consent_marketing": True,
    }
    assert sorted(map(str, traits)) == ["None", "c-1"]  # Dee has no user id: keyed by her e-mail instead
    db.bind.dispose()  # type: ignore[union-attr]


def test_import_orders(cli_env: str, tmp_path: Path) -> None:
    ws = _workspace()
    path = tmp_path / "orders.csv"
    path.write_text(
        "Order ID,Email,Total,Currency,Date\nA-1,ana@example.com,$49.00,usd,2026-10-01\nA-2,ana@example.com,1500,JPY,2026-10-02 10:00\n"
    )
    result = _invoke("import", "orders", str(path), "-w", ws["id"])
    assert result.exit_code == 0, result.stdout
    assert "2 rows: stored 2, already imported 0, refused 0" in result.stdout
    db = _db(cli_env)
    with db.read() as session:
        rows = session.execute(
            select(Event.name, Event.properties, Event.high_signal)
            .where(Event.workspace_id == ws["id"])
            .order_by(Event.timestamp)
        ).all()
    assert [(n, p["order_id"], p["total_minor"], p["currency"], hs) for n, p, hs in rows] == [
        ("Order Completed", "A-1", 4900, "USD", True),
        ("Order Completed", "A-2", 1500, "JPY", True),
    ]
    db.bind.dispose()  # type: ignore[union-attr]


def test_quarantine_replay_and_export_from_the_cli(cli_env: str, tmp_path: Path) -> None:
    from offerloop.core.clock import utcnow

    ws = _workspace()
    db = _db(cli_env)
    with db.write() as session:
        batch = event_service.prepare_batch(
            [{"type": "track", "userId": "q", "messageId": "cq"}], received_at=utcnow(), max_event_bytes=32768
        )
        result = event_service.ingest(session=session, workspace_id=ws["id"], batch=batch)
    qid = result.items[0].quarantine_id
    assert qid is not None
    listing = _invoke("quarantine", "list", "-w", ws["id"])
    assert qid in listing.stdout and "missing_event_name" in listing.stdout
    still_bad = runner.invoke(app, ["quarantine", "replay", "-w", ws["id"], qid])
    assert still_bad.exit_code == 1
    fixed = tmp_path / "fixed.json"
    fixed.write_text(json.dumps({"type": "track", "userId": "q", "messageId": "cq", "event": "Fixed"}))
    ok = _invoke("quarantine", "replay", "-w", ws["id"], qid, "--payload", str(fixed))
    assert ok.exit_code == 0 and json.loads(ok.stdout)["status"] == "replayed"
    out = tmp_path / "ws.jsonl"
    exported = _invoke("export", "-w", ws["id"], "-o", str(out))
    assert exported.exit_code == 0
    kinds = [json.loads(line)["kind"] for line in out.read_text().splitlines()]
    assert kinds == ["buyer", "event", "quarantine"]
    unknown = runner.invoke(app, ["quarantine", "list", "-w", "ws_nope"])
    assert unknown.exit_code == 0 and "quarantine is empty" in unknown.stdout
    db.bind.dispose()  # type: ignore[union-attr]
