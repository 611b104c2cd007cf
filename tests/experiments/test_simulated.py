"""Acceptance on seeded simulated buyers sent through the real API: a known lift lies inside the reported
interval, an A/A test finds nothing, and a 55/45 split of a 50/50 plan is flagged as a sample-ratio
mismatch. The seed is fixed once; it was not chosen for the outcome."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from tests.experiments.helpers import experiment, order, send, track

from offerloop.db.uow import Database
from offerloop.experiments import service
from offerloop.experiments.schemas import AssignRequest
from offerloop.identity import service as identity_service
from offerloop.ml import experiments as stats
from offerloop.workspaces.schemas import WorkspaceCreated

SEED = 20261206
N = 4000
ORDER_MINOR = 2000  # a converter's order: 2000 plus what they spent in the pre-period
PRE_VALUES = (0, 0, 0, 1000, 3000)  # pre-period revenue, drawn uniformly: mean 800


def _simulate(
    client: TestClient, write: dict[str, str], secret: dict[str, str], key: str, rates: dict[str, float],
    *, db: Database | None = None, workspace_id: str = "",
) -> tuple[dict[str, Any], dict[str, str], dict[str, int], dict[str, float]]:  # fmt: skip
    """N buyers with a pre-period, assigned through /assign (or, given ``db``, the service in one
    transaction: faster), converting at their arm's rate: the results, each buyer's arm, and the
    conversions and revenue simulated per arm."""
    rng = np.random.default_rng(SEED)
    start = datetime.now(UTC)
    users = [f"{key}-{i}" for i in range(N)]
    pre = rng.choice(PRE_VALUES, size=N)
    send(client, write, [track(u, "Page Viewed", start - timedelta(days=20), 0) for u in users])
    send(
        client,
        write,
        [order(u, start - timedelta(days=10), 0, int(v)) for u, v in zip(users, pre, strict=True) if v],
    )
    r = client.post("/v1/experiments", headers=secret, json=experiment(key, metrics={"covariate": "revenue"}))
    assert r.status_code == 201, r.text
    arms: dict[str, str] = {}
    if db is None:
        for u in users:
            r = client.post(f"/v1/experiments/{key}/assign", headers=secret, json={"user_id": u})
            assert r.status_code == 200, r.text
            assert r.json()["exposed"] and r.json()["first_exposure"]
            arms[u] = r.json()["arm"]
    else:
        with db.write() as session:
            for u in users:
                got = service.assign(session=session, workspace_id=workspace_id, key=key,
                                     request=AssignRequest(user_id=u))  # fmt: skip
                assert got.exposed and got.first_exposure
                arms[u] = got.arm
    after = datetime.now(UTC)
    draws = rng.random(N)
    converted = [u for u, d in zip(users, draws, strict=True) if d < rates[arms[u]]]
    values = {u: ORDER_MINOR + int(v) for u, v in zip(users, pre, strict=True)}
    send(client, write, [order(u, after, 1, values[u]) for u in converted])
    conversions = {a: sum(1 for u in converted if arms[u] == a) for a in rates}
    revenue = {a: sum(values[u] for u in converted if arms[u] == a) for a in rates}
    r = client.get(f"/v1/experiments/{key}/results", headers=secret)
    assert r.status_code == 200, r.text
    return r.json(), arms, conversions, revenue


def _inside(value: float, d: dict[str, Any]) -> bool:
    return bool(d["ci_low"] <= value <= d["ci_high"])


def test_a_known_lift_lies_inside_the_interval(
    client: TestClient, write_headers: dict[str, str], secret_headers: dict[str, str]
) -> None:
    out, arms, conversions, revenue = _simulate(
        client, write_headers, secret_headers, "lift", {"control": 0.10, "treatment": 0.15}
    )
    exposed = {a: sum(1 for v in arms.values() if v == a) for a in ("control", "treatment")}
    assert out["exposed"] == N
    by_arm = {a["arm"]: a for a in out["arms"]}
    for arm in ("control", "treatment"):
        assert by_arm[arm]["exposed"] == exposed[arm]
        assert by_arm[arm]["conversions"] == conversions[arm]
        assert by_arm[arm]["revenue_minor"] == revenue[arm]
    (variant,) = out["variants"]
    conv = variant["conversion"]
    rate = {a: conversions[a] / exposed[a] for a in exposed}
    assert conv["difference"] == rate["treatment"] - rate["control"]
    assert _inside(0.05, conv) and conv["significant"] and conv["p_value"] < 0.001
    assert _inside(0.05, variant["conversion_cuped"])
    # revenue per exposed buyer: 0.05 * E[2000 + pre] = 0.05 * 2800 = 140 minor units more
    assert _inside(140.0, variant["revenue_per_buyer"]) and _inside(140.0, variant["revenue_per_buyer_cuped"])
    plain, cuped = variant["revenue_per_buyer"], variant["revenue_per_buyer_cuped"]
    assert cuped["ci_high"] - cuped["ci_low"] < plain["ci_high"] - plain["ci_low"]  # the pre-period helps
    assert out["cuped"]["theta_revenue"]["treatment"] > 0
    bayes = variant["bayes_conversion"]
    assert bayes["chance_to_beat_control"] > 0.999
    assert bayes["expected_loss_variant"] < bayes["expected_loss_control"]
    assert variant["bayes_revenue_per_buyer"]["chance_to_beat_control"] > 0.99
    assert out["srm"]["mismatch"] is False
    assert out["personas"][0]["persona"] is None  # no persona templates here: one group, everyone
    assert sum(a["exposed"] for a in out["personas"][0]["arms"]) == N


def test_an_a_a_test_finds_no_difference(
    client: TestClient, db: Database, workspace: WorkspaceCreated, write_headers: dict[str, str],
    secret_headers: dict[str, str],
) -> None:  # fmt: skip
    rates = {"control": 0.10, "treatment": 0.10}
    out, arms, conversions, _ = _simulate(
        client, write_headers, secret_headers, "a-a", rates, db=db, workspace_id=workspace.id
    )
    (variant,) = out["variants"]
    for metric in ("conversion", "conversion_cuped", "revenue_per_buyer", "revenue_per_buyer_cuped"):
        d = variant[metric]
        assert _inside(0.0, d), metric
        assert d["p_value"] >= 0.05 and d["significant"] is False, metric
    assert 0.05 < variant["bayes_conversion"]["chance_to_beat_control"] < 0.95
    assert out["srm"]["mismatch"] is False
    n = {a: sum(1 for v in arms.values() if v == a) for a in ("control", "treatment")}
    expect = stats.proportions(conversions["control"], n["control"], conversions["treatment"], n["treatment"])
    assert expect is not None and variant["conversion"]["p_value"] == expect.p_value


def test_a_55_45_split_of_a_50_50_plan_is_a_sample_ratio_mismatch(
    client: TestClient, db: Database, workspace: WorkspaceCreated, write_headers: dict[str, str],
    secret_headers: dict[str, str],
) -> None:  # fmt: skip
    """A client that loses a share of the treatment's exposures (its page fails before logging): of the
    buyers it meant to expose, 5,500 control and 4,500 treatment reach /assign."""
    users = [f"srm-{i}" for i in range(12_000)]
    send(client, write_headers, [track(u, "Page Viewed", datetime.now(UTC), 0) for u in users])
    r = client.post("/v1/experiments", headers=secret_headers, json=experiment("srm"))
    assert r.status_code == 201
    wanted, reached = {"control": 5500, "treatment": 4500}, {"control": 0, "treatment": 0}
    with db.write() as session:
        for u in users:
            buyer, _ = identity_service.find_buyer(session=session, workspace_id=workspace.id, user_id=u)
            arm = service.bucket(workspace.id, "srm", buyer, [{"key": "control", "weight": 1},
                                                                        {"key": "treatment", "weight": 1}])  # fmt: skip
            if reached[arm] < wanted[arm]:
                got = service.arm_for(session=session, workspace_id=workspace.id, key="srm", buyer_id=buyer)
                assert got.arm == arm
                reached[arm] += 1
    assert reached == wanted
    out = client.get("/v1/experiments/srm/results", headers=secret_headers).json()
    srm = out["srm"]
    # expected 5,000 each: chi2 = 2 * 500^2 / 5,000 = 100 on 1 dof, p = erfc(sqrt 50) ~ 1.5e-23
    assert srm["observed"] == {"control": 5500, "treatment": 4500}
    assert srm["expected"] == {"control": 5000.0, "treatment": 5000.0}
    assert srm["chi2"] == 100.0
    assert math.isclose(srm["p_value"], math.erfc(math.sqrt(50)), rel_tol=1e-9)
    assert srm["mismatch"] is True
