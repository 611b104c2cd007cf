"""`offerloop analytics rebuild`: the backfill of the analytics state from what the store holds."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import delete, func, select
from tests.cli.test_cli import _invoke, cli_env

from offerloop.db.engine import make_engine
from offerloop.db.uow import Database
from offerloop.models import AnalyticsBuyer, AnalyticsPurchase

__all__ = ["cli_env"]  # the CLI test's fixture: a database the CLI commits to for real


def _counts(url: str, ws: str) -> tuple[int, int]:
    engine = make_engine(url)
    try:
        with Database(engine).read() as session:
            purchases = session.scalar(
                select(func.count())
                .select_from(AnalyticsPurchase)
                .where(AnalyticsPurchase.workspace_id == ws)
            )
            buyers = session.scalar(
                select(func.count()).select_from(AnalyticsBuyer).where(AnalyticsBuyer.workspace_id == ws)
            )
        return int(purchases or 0), int(buyers or 0)
    finally:
        engine.dispose()


def test_rebuild_restores_the_state_and_refuses_an_unknown_workspace(cli_env: str, tmp_path: Path) -> None:
    created = _invoke("workspace", "create", "Rebuild Creator", "--json")
    ws = json.loads(created.stdout)["id"]
    orders = tmp_path / "orders.csv"
    orders.write_text("Order ID,Email,Total,Currency,Date\nA-1,ana@example.com,$49.00,usd,2026-10-01\n"
                      "A-2,ana@example.com,$10.00,usd,2026-10-05\nB-1,bo@example.com,1500,JPY,2026-10-02 10:00\n")  # fmt: skip
    assert _invoke("import", "orders", str(orders), "-w", ws).exit_code == 0
    assert _counts(cli_env, ws) == (3, 2)  # the consumer kept it as the import was logged
    engine = make_engine(cli_env)
    try:
        with Database(engine).write() as session:  # a database upgraded with the tables empty
            session.execute(delete(AnalyticsPurchase).where(AnalyticsPurchase.workspace_id == ws))
            session.execute(delete(AnalyticsBuyer).where(AnalyticsBuyer.workspace_id == ws))
    finally:
        engine.dispose()
    assert _counts(cli_env, ws) == (0, 0)
    done = _invoke("analytics", "rebuild", "-w", ws, "--json")
    assert done.exit_code == 0, done.stdout + done.stderr
    assert json.loads(done.stdout) == {"workspaces": {ws: 2}}
    assert _counts(cli_env, ws) == (3, 2)
    unknown = _invoke("analytics", "rebuild", "-w", "ws_nope")
    assert unknown.exit_code == 1
    assert unknown.stderr == "error [workspace_not_found]: workspace ws_nope does not exist\n"
