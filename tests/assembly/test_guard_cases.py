"""The guard test set (tests/assembly/guard_cases.yaml): every hand-written case gets its expected verdict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from offerloop.assembly.guard import guard

CASES_FILE = Path(__file__).with_name("guard_cases.yaml")
MIN_SIMILARITY = 0.55  # the production default of RewriterConfig


def load_cases() -> list[dict[str, Any]]:
    return list(yaml.safe_load(CASES_FILE.read_text(encoding="utf-8"))["cases"])


CASES = load_cases()


def test_the_set_is_large_and_covers_every_kind() -> None:
    assert len(CASES) >= 50
    assert len({c["id"] for c in CASES}) == len(CASES)
    verdicts = [c["verdict"] for c in CASES]
    assert set(verdicts) == {"faithful", "unfaithful"}
    assert verdicts.count("faithful") >= 20 and verdicts.count("unfaithful") >= 25
    kinds = {c.get("kind") for c in CASES if c["verdict"] == "unfaithful"}
    assert {"number", "name", "domain", "link", "url", "negation_removed", "negation_added", "claim",
            "quote"} <= kinds  # fmt: skip


def _param(case: dict[str, Any]) -> Any:
    # A documented limitation stays in the set (it counts against precision in bench/guard.py) and
    # fails strictly here, so fixing it flips the test.
    marks = (
        [pytest.mark.xfail(strict=True, reason="known false positive")]
        if case.get("known_false_positive")
        else []
    )
    return pytest.param(case, id=case["id"], marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_guard_verdict(case: dict[str, Any]) -> None:
    result = guard(
        case["source"],
        case["rewrite"],
        min_similarity=MIN_SIMILARITY,
        allowed_domains=case.get("allowed_domains", ()),
    )
    if case["verdict"] == "faithful":
        assert result.reasons == ()
        assert result.ok is True
    else:
        assert result.ok is False
        assert any(r.split(":", 1)[0] == case["kind"] for r in result.reasons), result.reasons
