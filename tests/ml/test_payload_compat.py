"""Payloads saved before ``ml/policies`` became a package (one per policy kind) still load and rank the same."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from offerloop.ml.base import Action, load_policy
from offerloop.ml.policies import POLICY_KINDS

# Written by the single-module ml/policies.py: 20 rounds of learning each, then the ranking below.
_SAVED: dict[str, Any] = json.loads((Path(__file__).parent / "data" / "payloads_v1.json").read_text())
_ACTIONS = [Action("a", {"price": 1.0}), Action("b", {"kind": "x"})]


def test_every_policy_kind_has_a_saved_payload() -> None:
    assert sorted(_SAVED) == sorted(POLICY_KINDS)


@pytest.mark.parametrize("kind", sorted(_SAVED))
def test_a_saved_payload_loads_and_ranks_as_it_did(kind: str) -> None:
    policy = load_policy(_SAVED[kind]["payload"])
    ranked = policy.rank({"persona": "fan", "visits": 2}, _ACTIONS)
    assert [[s.index, s.score, s.probability, s.expected_reward] for s in ranked] == _SAVED[kind]["ranked"]
    assert policy.to_payload()["version"] == 1
