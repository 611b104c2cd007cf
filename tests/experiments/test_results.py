"""Results on a hand-built experiment: eight buyers, events placed around their exposure, values by hand."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from tests.experiments.helpers import experiment, order, send, track

from offerloop.db.uow import Database
from offerloop.experiments import results, service
from offerloop.experiments.schemas import ArmRead, ExperimentRead, GuardrailIn, Metrics
from offerloop.identity import service as identity_service
from offerloop.ml import experiments as stats
from offerloop.models import BuyerPersona
from offerloop.workspaces.schemas import WorkspaceCreated

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=60)  # everyone's exposure


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


CONTROL, TREATMENT = ("c1", "c2", "c3", "c4"), ("t1", "t2", "t3", "t4")
EVENTS = [
    *(track(u, "Page Viewed", day(-1), 0) for u in CONTROL + TREATMENT),
    order("c1", day(1), 1, 1000), order("c1", day(-10), 2, 500), track("c1", "Page Viewed", day(31), 3),
    order("c2", day(40), 1, 3000), order("c2", day(-40), 2, 700),  # after the window; before the pre-period
    track("c3", "Order Completed", day(2), 1, total_minor=9000, offer_key="other"),  # not this conversion
    order("t1", day(3), 1, 2000), track("t1", "Order Refunded", day(4), 2, total_minor=2000),
    order("t2", day(5), 1, 2500), order("t2", day(6), 2, 500), track("t2", "Page Viewed", day(35), 3),
    track("t3", "Order Refunded", day(1), 1), order("t3", day(-5), 2, 1000),
]  # fmt: skip
PERSONAS = {"c1": "maker", "t1": "maker", "t2": "maker", "c2": "learner"}


@pytest.fixture
def exposed(
    client: TestClient, db: Database, workspace: WorkspaceCreated, write_headers: dict[str, str],
    secret_headers: dict[str, str],
) -> None:  # fmt: skip
    """Both experiments, every buyer exposed at T0: the control first (weights 1/0), then the treatment."""
    send(client, write_headers, EVENTS)
    metrics = {"conversion": {"where": {"offer_key": "course"}}, "retention_days": 30}
    guard = [{"key": "refunds", "event": "Order Refunded", "threshold": 0.1}]
    for key, covariate in (("exact", "revenue"), ("by-events", "events")):
        body = experiment(key, (1, 0), metrics={**metrics, "covariate": covariate}, guardrails=guard)
        assert client.post("/v1/experiments", headers=secret_headers, json=body).status_code == 201
    ws = workspace.id
    with db.write() as session:
        ids = {
            u: identity_service.find_buyer(session=session, workspace_id=ws, user_id=u)[0] for u in PERSONAS
        }
        for user, persona in PERSONAS.items():
            session.add(BuyerPersona(buyer_id=ids[user], workspace_id=ws, persona=persona, confidence=0.9,
                                     posterior={persona: 0.9}, reasons=[], templates_version=1, updated_at=T0))  # fmt: skip
        for key in ("exact", "by-events"):
            for users, weights in ((CONTROL, {"control": 1, "treatment": 0}), (TREATMENT, {"control": 0, "treatment": 1})):  # fmt: skip
                service.set_weights(session=session, workspace_id=ws, key=key, weights=weights)
                for u in users:
                    buyer, _ = identity_service.find_buyer(session=session, workspace_id=ws, user_id=u)
                    service.arm_for(session=session, workspace_id=ws, key=key, buyer_id=buyer, now=T0)


@pytest.mark.usefixtures("exposed")
def test_results_by_hand(client: TestClient, secret_headers: dict[str, str]) -> None:
    out = client.get("/v1/experiments/exact/results", headers=secret_headers).json()
    arms = {a["arm"]: a for a in out["arms"]}
    # control: c1 converts (1000); c2's order is after the 30-day window; c3's is another offer.
    # retained (an event 30+ days after exposure): c1 (day 31), c2 (day 40).
    assert arms["control"] == {"arm": "control", "exposed": 4, "conversions": 1, "conversion_rate": 0.25,
                               "revenue_minor": 1000, "revenue_per_buyer": 250.0, "retention_eligible": 4,
                               "retained": 2, "retention_rate": 0.5}  # fmt: skip
    # treatment: t1 (2000) and t2 (2500 + 500: one conversion, both orders' revenue); retained: t2
    assert arms["treatment"] == {"arm": "treatment", "exposed": 4, "conversions": 2, "conversion_rate": 0.5,
                                 "revenue_minor": 5000, "revenue_per_buyer": 1250.0, "retention_eligible": 4,
                                 "retained": 1, "retention_rate": 0.25}  # fmt: skip
    (v,) = out["variants"]
    # .25 vs .5: se = sqrt(.25*.75/4 + .5*.5/4) = sqrt(.109375); pooled .375: se0 = sqrt(.375*.625*.5)
    conv = v["conversion"]
    half = 1.959963984540054 * math.sqrt(0.109375)
    assert conv["difference"] == 0.25 and conv["relative"] == 1.0
    assert (conv["ci_low"], conv["ci_high"]) == pytest.approx((0.25 - half, 0.25 + half), abs=1e-12)
    assert conv["p_value"] == pytest.approx(math.erfc(0.25 / math.sqrt(0.1171875) / math.sqrt(2)), abs=1e-12)
    assert conv["p_value_holm"] == conv["p_value"] and conv["significant"] is False  # one variant: Holm = raw
    rev = v["revenue_per_buyer"]
    expect = stats.welch([1000, 0, 0, 0], [2000, 3000, 0, 0])
    assert expect is not None and rev["difference"] == 1000.0
    assert (rev["ci_low"], rev["ci_high"], rev["p_value"]) == (expect.low, expect.high, expect.p_value)
    # retention .5 -> .25
    assert v["retention"]["difference"] == -0.25
    # guardrail: refunds 0/4 vs 2/4 (t1 on day 4, t3 on day 1): .5 worse, over the .1 allowed
    (g,) = v["guardrails"]
    assert (g["control_rate"], g["variant_rate"], g["breached"]) == (0.0, 0.5, True)
    # CUPED on pre-period revenue: x = 500,0,0,0 | 0,0,1000,0 (c2's pre order is 40 days before: outside),
    # y = 1000,0,0,0 | 2000,3000,0,0: sum dx dy = -625000, sum dx^2 = 968750, theta = -20/31
    assert out["cuped"]["theta_revenue"]["treatment"] == pytest.approx(-20 / 31, abs=1e-12)
    # mean x: 125 (control), 250 (treatment), 187.5 (both): the difference gains -theta * 125 = 2500/31
    assert v["revenue_per_buyer_cuped"]["difference"] == pytest.approx(1000 + 2500 / 31, abs=1e-9)
    # Bayes: Beta(2, 4) vs Beta(3, 3)
    assert v["bayes_conversion"]["chance_to_beat_control"] == pytest.approx(stats.beta_beats(3, 3, 2, 4))
    assert out["srm"]["observed"] == {"control": 4, "treatment": 4}
    assert out["srm"]["expected"] == {"control": 0.0, "treatment": 8.0}  # the weights are now 0/1 ...
    assert out["srm"]["mismatch"] is True and out["srm"]["chi2"] is None  # ... so the split looks wrong
    # personas (current), None last
    personas = {p["persona"]: p for p in out["personas"]}
    assert [p["persona"] for p in out["personas"]] == ["learner", "maker", None]
    assert [(a["arm"], a["exposed"], a["conversions"]) for a in personas["maker"]["arms"]] == [
        ("control", 1, 1), ("treatment", 2, 2)
    ]  # fmt: skip
    assert personas["maker"]["conversion"]["treatment"]["difference"] == 0.0
    assert personas["learner"]["conversion"]["treatment"] is None  # no treated learner
    assert [(a["arm"], a["exposed"]) for a in personas[None]["arms"]] == [("control", 2), ("treatment", 2)]


@pytest.mark.usefixtures("exposed")
def test_event_count_covariate(client: TestClient, secret_headers: dict[str, str]) -> None:
    out = client.get("/v1/experiments/by-events/results", headers=secret_headers).json()
    # events in [T0 - 30d, T0): every buyer's day -1 visit, plus c1's day -10 and t3's day -5 orders:
    # x = 2,1,1,1 | 1,1,2,1; sum dx dy = -500, sum dx^2 = 1.5: theta = -1000/3
    assert out["cuped"]["covariate"] == "events"
    assert out["cuped"]["theta_revenue"]["treatment"] == pytest.approx(-1000 / 3, abs=1e-9)


def test_retention_counts_only_buyers_exposed_long_enough(
    client: TestClient, db: Database, workspace: WorkspaceCreated, write_headers: dict[str, str],
    secret_headers: dict[str, str],
) -> None:  # fmt: skip
    send(client, write_headers, [track("fresh", "Page Viewed", datetime.now(UTC), 0)])
    client.post("/v1/experiments", headers=secret_headers, json=experiment("fresh"))
    with db.write() as session:
        buyer, _ = identity_service.find_buyer(session=session, workspace_id=workspace.id, user_id="fresh")
        service.arm_for(session=session, workspace_id=workspace.id, key="fresh", buyer_id=buyer,
                        now=datetime.now(UTC) - timedelta(days=29))  # fmt: skip
    out = client.get("/v1/experiments/fresh/results", headers=secret_headers).json()
    assert sum(a["retention_eligible"] for a in out["arms"]) == 0
    assert all(a["retention_rate"] is None for a in out["arms"])


def test_holm_over_the_variants_of_an_a_b_n_test() -> None:
    arms = ["control", "b", "c", "d"]
    read = ExperimentRead(
        key="abn", name="abn", subject="offer", subject_id="x", control="control",
        arms=[ArmRead(key=a, weight=1) for a in arms], metrics=Metrics(), guardrails=[], status="running",
        starts_at=None, ends_at=None, created_at=T0, updated_at=T0,
    )  # fmt: skip
    rates = {"control": 10, "b": 14, "c": 18, "d": 11}  # conversions of 100 each
    exposed = [(f"{a}{i}", a, T0, None) for a in arms for i in range(100)]
    events = [
        (f"{a}{i}", "Order Completed", day(1), {"total_minor": 100}) for a in arms for i in range(rates[a])
    ]
    out = results.compute(experiment=read, metrics=Metrics(), guardrails=list[GuardrailIn](), exposed=exposed,
                          events=events, last_event={}, pre_events=[], now=day(2))  # fmt: skip
    raw = [v.conversion.p_value for v in out.variants if v.conversion]
    assert [v.conversion.p_value_holm for v in out.variants if v.conversion] == stats.holm(raw)
    # c (18 vs 10) is the smallest p: times 3; b times 2, d times 1 (each kept at least the one before)
    by_p = sorted(raw)
    assert out.variants[1].conversion is not None
    assert out.variants[1].conversion.p_value_holm == min(1.0, 3 * by_p[0])
    assert out.srm is not None and out.srm.mismatch is False and out.srm.chi2 == 0.0


@pytest.mark.parametrize("empty", ["control", "b"])
def test_no_bayesian_figures_for_an_arm_nobody_saw(empty: str) -> None:
    # adversarial finding 6: 39 exposed without a conversion against an arm nobody saw gave P(beat) = 40/41
    arms = ["control", "b"]
    read = ExperimentRead(
        key="empty", name="empty", subject="offer", subject_id="x", control="control",
        arms=[ArmRead(key=a, weight=1) for a in arms], metrics=Metrics(), guardrails=[], status="running",
        starts_at=None, ends_at=None, created_at=T0, updated_at=T0,
    )  # fmt: skip
    seen = "b" if empty == "control" else "control"
    exposed = [(f"x{i}", seen, T0, None) for i in range(39)]
    out = results.compute(experiment=read, metrics=Metrics(), guardrails=list[GuardrailIn](), exposed=exposed,
                          events=[], last_event={}, pre_events=[], now=day(2))  # fmt: skip
    (variant,) = out.variants
    assert variant.conversion is None
    assert variant.bayes_conversion is None
    assert variant.bayes_revenue_per_buyer is None


def test_absurd_or_negative_order_totals_count_as_zero(
    client: TestClient, db: Database, workspace: WorkspaceCreated, write_headers: dict[str, str],
    secret_headers: dict[str, str],
) -> None:  # fmt: skip
    # adversarial finding 3: 1e308, 10**30 and negative totals went straight into revenue (a 309-digit integer);
    # read now as attribution reads them: finite, within ±10^15 minor units, rounded, a negative total is 0
    totals = {
        "a": 1e308,
        "b": 10**30,
        "c": -(2**63),
        "d": -5,
        "e": "1500",
        "f": 1000.4,
        "g": 10**15,
        "h": "x",
    }
    batch = [
        track(u, "Order Completed", day(1), 1, total_minor=total, currency="USD")
        for u, total in totals.items()
    ]
    r = client.post(
        "/v1/batch", headers=write_headers, content=json.dumps({"batch": batch})
    )  # 10**30: not orjson
    assert r.status_code == 200, r.text
    body = experiment("absurd", (1, 0))
    assert client.post("/v1/experiments", headers=secret_headers, json=body).status_code == 201
    with db.write() as session:
        for u in totals:
            buyer, _ = identity_service.find_buyer(session=session, workspace_id=workspace.id, user_id=u)
            service.arm_for(session=session, workspace_id=workspace.id, key="absurd", buyer_id=buyer, now=T0)
    out = client.get("/v1/experiments/absurd/results", headers=secret_headers).json()
    control = out["arms"][0]
    assert control["exposed"] == 8 and control["conversions"] == 8
    assert control["revenue_minor"] == 1500 + 1000 + 10**15
    assert control["revenue_per_buyer"] == (1500 + 1000 + 10**15) / 8
