"""Acceptance on seeded simulated buyers sent through the real API: a known lift lies inside the reported
interval, an A/A test finds nothing, and a 55/45 split of a 50/50 plan is flagged as a sample-ratio
mismatch.

The seed was fixed before the simulation drew per arm (it is the one the first, per-buyer version used).
Assignment depends on ids made at random on every run, so two pure tests below show that the assertions hold
for every split the hash can produce, and that the intervals are calibrated over 400 other seeds.
"""

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


def arm_draws(seed: int, arm_index: int) -> tuple[np.ndarray, np.ndarray]:
    """An arm's seeded stream: the k-th buyer of the arm gets pre-period revenue values[k] and converts when
    uniform[k] < the arm's rate."""
    stream = np.random.default_rng([seed, arm_index])
    return stream.choice(PRE_VALUES, size=N), stream.random(N)


def _simulate(
    client: TestClient, write: dict[str, str], secret: dict[str, str], key: str, rates: dict[str, float],
    *, db: Database | None = None, workspace_id: str = "",
) -> tuple[dict[str, Any], dict[str, str], dict[str, int], dict[str, float]]:  # fmt: skip
    """N buyers assigned through /assign (or, given ``db``, the service in one transaction: faster), then
    given a pre-period and outcomes: the results, each buyer's arm, and the conversions and revenue
    simulated per arm.

    Which buyer lands in which arm depends on ids made at random on every run (workspace, buyer), so the
    outcomes are drawn per arm, not per buyer: the k-th buyer of an arm gets the k-th draw of that arm's
    seeded stream. Each arm's data is then a prefix of a fixed sequence, and only its length (the split,
    about 2,000 +- 32) changes between runs."""
    start = datetime.now(UTC)
    users = [f"{key}-{i}" for i in range(N)]
    send(client, write, [track(u, "Page Viewed", start - timedelta(days=20), 0) for u in users])
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
    draws = {arm: arm_draws(SEED, i) for i, arm in enumerate(sorted(rates))}
    pre: dict[str, int] = {}
    converted: list[str] = []
    seen = dict.fromkeys(rates, 0)
    for u in users:
        arm = arms[u]
        values, uniform = draws[arm]
        pre[u] = int(values[seen[arm]])
        if uniform[seen[arm]] < rates[arm]:
            converted.append(u)
        seen[arm] += 1
    # the pre-period orders (10 days before exposure) and the conversions (after it)
    send(client, write, [order(u, start - timedelta(days=10), 0, v) for u, v in pre.items() if v])
    values = {u: ORDER_MINOR + pre[u] for u in users}
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


def _arm_arrays(seed: int, rates: tuple[float, float], n_control: int) -> list[np.ndarray]:
    """What the results compute on when ``n_control`` buyers land in the control: (pre, converted, revenue)
    of the control, then of the treatment (each a prefix of its arm's stream)."""
    out = []
    for i, n in enumerate((n_control, N - n_control)):
        values, uniform = arm_draws(seed, i)
        pre = values[:n].astype(float)
        converted = (uniform[:n] < rates[i]).astype(float)
        out += [pre, converted, converted * (ORDER_MINOR + pre)]
    return out


def _intervals(seed: int, rates: tuple[float, float], n_control: int) -> dict[str, stats.Comparison]:
    pc, yc, rc, pt, yt, rt = _arm_arrays(seed, rates, n_control)
    found = {
        "conversion": stats.proportions(int(yc.sum()), n_control, int(yt.sum()), N - n_control),
        "conversion_cuped": stats.cuped(yc, pc, yt, pt)[0],
        "revenue_per_buyer": stats.welch(rc, rt),
        "revenue_per_buyer_cuped": stats.cuped(rc, pc, rt, pt)[0],
    }
    return {k: v for k, v in found.items() if v is not None}


def test_the_acceptance_holds_for_every_split_the_hash_can_make() -> None:
    """The split between arms changes from run to run (ids are random); for every split from 1,850 to 2,150
    control buyers (beyond that: probability < 1e-10), SEED's data gives the outcomes asserted above."""
    for n_control in range(1850, 2151):
        lift = _intervals(SEED, (0.10, 0.15), n_control)
        assert lift["conversion"].low <= 0.05 <= lift["conversion"].high, n_control
        assert lift["conversion_cuped"].low <= 0.05 <= lift["conversion_cuped"].high, n_control
        assert lift["conversion"].p_value < 0.001, n_control
        assert lift["revenue_per_buyer"].low <= 140 <= lift["revenue_per_buyer"].high, n_control
        assert lift["revenue_per_buyer_cuped"].low <= 140 <= lift["revenue_per_buyer_cuped"].high, n_control
        for name, c in _intervals(SEED, (0.10, 0.10), n_control).items():
            assert c.low <= 0.0 <= c.high and c.p_value >= 0.05, (n_control, name)


def test_the_intervals_cover_the_known_effect_95_percent_of_the_time() -> None:
    """Calibration, so the acceptance is not one lucky seed: 400 seeded replicates of the same simulation
    (2,000 per arm). A 95% interval should miss about 20 times (binomial sd 4.4); an A/A test should find a
    difference about 20 times."""
    misses = dict.fromkeys(
        ("conversion", "conversion_cuped", "revenue_per_buyer", "revenue_per_buyer_cuped"), 0
    )
    false_positives = 0
    for seed in range(400):
        for name, c in _intervals(seed, (0.10, 0.15), 2000).items():
            known = 0.05 if name.startswith("conversion") else 140.0
            misses[name] += not c.low <= known <= c.high
        false_positives += _intervals(seed, (0.10, 0.10), 2000)["conversion"].p_value < 0.05
    assert all(8 <= m <= 32 for m in misses.values()), misses
    assert 8 <= false_positives <= 32, false_positives
