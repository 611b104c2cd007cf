from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.server


def test_demo_runs_to_the_end_on_sqlite(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OFFERLOOP_")}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "offerloop.cli.main",
            "demo",
            "--buyers",
            "150",
            "--events",
            "3000",
            "--db",
            str(tmp_path / "d.db"),
        ],
        env={**env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout
    for heading in (
        "Your audience",
        "Why events were quarantined",
        "Buyers by first-touch channel",
        "Where to look next",
    ):
        assert heading in text
    assert "Sent 3,000 events for 150 synthetic buyers" in text
    assert "Micro-personas, inferred live at ingest" in text
    assert text.count("Next best actions for") == 3
    # the loop closed: outcomes became rewards, a model was learned, and the lift report was printed
    assert "Closing the loop" in text and "trained model v1" in text
    assert "Lift in week 2" in text and "  overall " in text
