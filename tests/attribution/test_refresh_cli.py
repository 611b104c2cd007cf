"""`offerloop attribution refresh`: orders imported with `offerloop import orders` are conversions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.cli.test_cli import _invoke, cli_env
from typer.testing import CliRunner

from offerloop.cli.main import app
from offerloop.db.engine import make_engine
from offerloop.db.uow import Database
from offerloop.models import AttributionCredit

runner = CliRunner()
__all__ = ["cli_env"]  # the CLI test's fixture: a database the CLI commits to for real


def test_refresh_credits_imported_orders(cli_env: str, tmp_path: Path) -> None:
    created = _invoke("workspace", "create", "Attribution Creator", "--json")
    assert created.exit_code == 0
    ws = json.loads(created.stdout)["id"]
    orders = tmp_path / "orders.csv"
    orders.write_text("Order ID,Email,Total,Currency,Date\nA-1,ana@example.com,$49.00,usd,2026-10-01\n"
                      "A-2,bo@example.com,1500,JPY,2026-10-02 10:00\n")  # fmt: skip
    assert _invoke("import", "orders", str(orders), "-w", ws).exit_code == 0
    args = ("attribution", "refresh", "-w", ws, "--model", "last", "--model", "markov",
            "--start", "2026-10-01", "--end", "2026-10-31", "--json")  # fmt: skip
    first = _invoke(*args)
    assert first.exit_code == 0, first.stdout + first.stderr
    assert json.loads(first.stdout) == {"models": ["last", "markov"], "conversion": "Order Completed",
                                        "start": "2026-10-01", "end": "2026-10-31", "conversions": 2, "rows": 4}  # fmt: skip
    assert _invoke(*args).exit_code == 0
    engine = make_engine(cli_env)
    try:
        with Database(engine).read() as session:
            rows = session.execute(
                select(AttributionCredit.model, AttributionCredit.conversion_id, AttributionCredit.channel,
                       AttributionCredit.share, AttributionCredit.value_minor, AttributionCredit.currency)
                .where(AttributionCredit.workspace_id == ws)
                .order_by(AttributionCredit.model, AttributionCredit.conversion_id)
            ).all()  # fmt: skip
    finally:
        engine.dispose()
    # No touches: each order's whole credit goes to "(none)", in its own currency.
    assert [tuple(r) for r in rows] == [
        ("last", "A-1", "(none)", 1.0, 4900.0, "USD"),
        ("last", "A-2", "(none)", 1.0, 1500.0, "JPY"),
        ("markov", "A-1", "(none)", 1.0, 4900.0, "USD"),
        ("markov", "A-2", "(none)", 1.0, 1500.0, "JPY"),
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--start", "2026-13-01"), "--start must be a date"),
        (("--start", "2026-11-02", "--end", "2026-11-01"), "is after end"),
        (("--where", "{oops"), "--where must be a JSON object"),
        (("--model", "u_shaped"), "models must be among"),
        (("--lookback-days", "0"), "lookback_days must be 1 to 365"),
    ],
)
def test_refresh_refusals(cli_env: str, args: tuple[str, ...], message: str) -> None:
    result = runner.invoke(app, ["attribution", "refresh", "-w", "ws_nope", *args], catch_exceptions=False)
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr
