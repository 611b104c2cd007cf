"""/v1/decide end to end: rules, exploration propensities, holdout, consent, rewards, snapshots."""

from __future__ import annotations

import json
from datetime import timedelta

import orjson
import pytest
from tests.conftest import LiveServer, bearer, msg

from offerloop.core.clock import utcnow
from offerloop.decisions import service as decisions_service
from offerloop.decisions.schemas import DecideRequest

CATALOG = [
    {"key": "mod-1", "kind": "module", "title": "Pricing basics", "tags": ["pricing"], "priority": 5,
     "completed_when": {"event": "Module Completed", "property": "module_id"},
     "outcome": {"event": "Module Completed", "match_property": "module_id", "window_days": 7}},
    {"key": "mod-2", "kind": "module", "title": "Pricing tiers", "tags": ["pricing"], "level": 2, "priority": 4,
     "prerequisites": ["mod-1"], "completed_when": {"event": "Module Completed", "property": "module_id"},
     "outcome": {"event": "Module Completed", "match_property": "module_id", "window_days": 7}},
    {"key": "drop-ltd", "kind": "offer", "title": "Limited print", "tags": ["limited"], "price_band": "premium", "priority": 3,
     "min_stage": "customer", "outcome": {"event": "Order Completed", "value_property": "total_minor", "value_scale": 10000, "window_days": 14}},
    {"key": "call-1", "kind": "coaching", "title": "1:1 call", "priority": 2, "frequency_cap": {"max": 1, "days": 7},
     "outcome": {"event": "Call Booked", "window_days": 3, "default_reward": -0.01}},
    {"key": "lesson-free", "kind": "lesson", "title": "Free lesson", "priority": 1,
     "outcome": {"event": "Lesson Completed", "window_days": 2}},
    {"key": "quiz", "kind": "prompt", "title": "Take the quiz", "priority": 0, "placements": ["home"],
     "outcome": {"event": "Quiz Completed", "window_days": 1}},
]  # fmt: skip


@pytest.fixture
def catalog(client, secret_headers):
    r = client.put("/v1/actions", headers=secret_headers, json=CATALOG)
    assert r.status_code == 200, r.text
    return r.json()


def send(client, headers, *messages):
    r = client.post("/v1/batch", headers=headers, content=orjson.dumps({"batch": list(messages)}))
    assert r.status_code == 200 and r.json()["quarantined"] == 0, r.text


def decide(client, headers, **body):
    r = client.post("/v1/decide", headers=headers, json={"placement": "home", "k": 6, **body})
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture
def no_holdout(client):
    client.app.state.settings.holdout_share = 0.0


def test_decide_applies_rules_and_explains(client, write_headers, secret_headers, catalog, no_holdout):
    send(client, write_headers, msg(type="identify", userId="r1", messageId="r1-i"),
         msg(type="track", userId="r1", event="Module Completed", properties={"module_id": "mod-1"}, messageId="r1-m1"))  # fmt: skip
    body = decide(client, secret_headers, user_id="r1", exclude=["quiz"])
    shown = [i["id"] for i in body["items"]]
    assert sorted(shown) == ["call-1", "lesson-free", "mod-2"]
    assert body["policy"] == "model" and body["model_version"] == 0 and body["holdout"] is False
    assert abs(sum(i["propensity"] for i in body["items"]) - 1.0) < 1e-9
    why = client.get(f"/v1/decisions/{body['decision_id']}", headers=secret_headers).json()
    assert sorted((e["id"], e["reason"]) for e in why["excluded"]) == [
        ("drop-ltd", "stage_below:customer"), ("mod-1", "already_completed"), ("quiz", "excluded_by_request"),
    ]  # fmt: skip
    assert why["chosen"] == shown[0] and why["propensity"] == body["items"][0]["propensity"]
    assert why["context"]["orders"] == 0
    # the 1:1 call was shown first at most once a week
    if shown[0] == "call-1":
        assert "call-1" not in [i["id"] for i in decide(client, secret_headers, user_id="r1")["items"]]


@pytest.fixture
def seeded_ids(monkeypatch):
    """Decision ids seed each decision's sampling: make them a fixed sequence, so statistical checks on
    the sampled actions give the same result on every run."""
    counter = iter(range(10**9))
    monkeypatch.setattr(decisions_service, "new_id", lambda prefix: f"{prefix}_{next(counter):026d}")


def test_propensities_match_the_exploration_policy(db, workspace, catalog, seeded_ids):
    # A fresh epsilon-greedy model: the first slot is the greedy action with 1 - e + e/n, any other with e/n.
    # "quiz" is placement-gated away from checkout, so n = 3 eligible actions.
    eps, n = 0.1, 3
    greedy_p, other_p = 1 - eps + eps / n, eps / n
    firsts = []
    with db.write() as session:
        # Train a model that clearly prefers the free lesson, and publish it for the placement.
        policy = decisions_service.new_policy(seed=3)
        by_key = {a.key: a for a in decisions_service.repository.actions(session, workspace.id)}
        actions = [decisions_service.model_action(by_key[k]) for k in ("mod-1", "call-1", "lesson-free")]
        for step in range(300):
            chosen = step % 3
            policy.learn_one({"orders": 0}, actions, chosen, 1 / 3, 1.0 if chosen == 2 else 0.0)
        assert (
            decisions_service.publish(
                session=session, workspace_id=workspace.id, placement="checkout", policy=policy
            )
            == 1
        )
        for i in range(600):
            request = DecideRequest(
                anonymous_id=f"fresh-{i}",
                placement="checkout",
                candidates=["mod-1", "call-1", "lesson-free", "quiz"],
            )
            out = decisions_service.decide(session=session, workspace_id=workspace.id, request=request, buyer_id=None,
                                           consent_personalization=None, holdout_share=0.0)  # fmt: skip
            assert len(out.items) == n
            first = out.items[0].propensity
            assert min(abs(first - greedy_p), abs(first - other_p)) < 1e-6  # VW computes in float32
            assert abs(sum(i.propensity for i in out.items) - 1.0) < 1e-9
            firsts.append(abs(first - greedy_p) < 1e-6)
            assert out.model_version == 1
    share = sum(firsts) / len(firsts)
    assert abs(share - greedy_p) < 3 * (greedy_p * (1 - greedy_p) / len(firsts)) ** 0.5


def test_cold_start_explores_every_eligible_action_uniformly(db, workspace, catalog, seeded_ids):
    """Before any snapshot exists, each eligible action is shown first with propensity 1/n (the data the
    first model learns from), not always the catalog's first action."""
    counts: dict[str, int] = {}
    with db.write() as session:
        for i in range(900):
            request = DecideRequest(
                anonymous_id=f"cold-{i}", placement="home", candidates=["mod-1", "call-1", "lesson-free"]
            )
            out = decisions_service.decide(session=session, workspace_id=workspace.id, request=request, buyer_id=None,
                                           consent_personalization=None, holdout_share=0.0)  # fmt: skip
            assert out.model_version == 0 and out.policy == "model"
            assert [round(item.propensity, 9) for item in out.items] == [round(1 / 3, 9)] * 3
            counts[out.items[0].id] = counts.get(out.items[0].id, 0) + 1
    assert sorted(counts) == ["call-1", "lesson-free", "mod-1"]
    for n in counts.values():  # each about 300 of 900 (binomial, 4 standard deviations)
        assert abs(n - 300) < 4 * (900 * (1 / 3) * (2 / 3)) ** 0.5


def test_holdout_and_consent_get_the_rules_order(client, write_headers, secret_headers, catalog):
    client.app.state.settings.holdout_share = 1.0
    send(client, write_headers, msg(type="identify", userId="h1", messageId="h1-i"))
    held = decide(client, secret_headers, user_id="h1")
    assert (held["holdout"], held["policy"]) == (True, "rules")
    assert [i["id"] for i in held["items"]] == ["mod-1", "call-1", "lesson-free", "quiz"]
    assert [i["propensity"] for i in held["items"]] == [1.0, 0.0, 0.0, 0.0]
    client.app.state.settings.holdout_share = 0.0
    send(
        client,
        write_headers,
        msg(type="identify", userId="h2", traits={"consent_personalization": False}, messageId="h2-i"),
    )
    refused = decide(client, secret_headers, user_id="h2")
    assert refused["policy"] == "rules_no_consent" and refused["items"][0]["id"] == "mod-1"


def test_outcomes_become_rewards_inside_the_window_only(
    client, db, workspace, write_headers, secret_headers, catalog, no_holdout
):
    send(client, write_headers, msg(type="identify", userId="w1", messageId="w1-i"))
    body = decide(client, secret_headers, user_id="w1", candidates=["mod-1"])
    assert body["items"][0]["id"] == "mod-1"
    # another module does not count; the recommended one does
    send(client, write_headers, msg(type="track", userId="w1", event="Module Completed", properties={"module_id": "other"},
                                    messageId="w1-x", timestamp=utcnow().isoformat()))  # fmt: skip
    assert client.get(f"/v1/decisions/{body['decision_id']}", headers=secret_headers).json()["reward"] is None
    send(client, write_headers, msg(type="track", userId="w1", event="Module Completed", properties={"module_id": "mod-1"},
                                    messageId="w1-done", timestamp=utcnow().isoformat()))  # fmt: skip
    rewarded = client.get(f"/v1/decisions/{body['decision_id']}", headers=secret_headers).json()
    assert (rewarded["reward"], rewarded["reward_source"]) == (1.0, "w1-done")

    # A decision made 20 days ago: its 3-day window has closed, a late booking earns nothing, the default applies.
    with db.write() as session:
        old = decisions_service.decide(session=session, workspace_id=workspace.id, buyer_id=rewarded["buyer_id"],
                                       request=DecideRequest(user_id="w1", placement="home", candidates=["call-1"]),
                                       consent_personalization=None, holdout_share=0.0, now=utcnow() - timedelta(days=20))  # fmt: skip
    send(
        client,
        write_headers,
        msg(
            type="track",
            userId="w1",
            event="Call Booked",
            messageId="w1-late",
            timestamp=utcnow().isoformat(),
        ),
    )
    assert client.get(f"/v1/decisions/{old.decision_id}", headers=secret_headers).json()["reward"] is None
    with db.write() as session:
        assert decisions_service.close_windows(session=session, workspace_id=workspace.id) == 1
    closed = client.get(f"/v1/decisions/{old.decision_id}", headers=secret_headers).json()
    assert (closed["reward"], closed["reward_source"]) == (-0.01, "default")


def test_value_from_the_outcome_event(client, write_headers, secret_headers, catalog, no_holdout):
    send(client, write_headers, msg(type="identify", userId="v1", messageId="v1-i"),
         *[msg(type="track", userId="v1", event="Order Completed", properties={"total_minor": 1000}, messageId=f"v1-o{i}") for i in range(2)])  # fmt: skip
    body = decide(client, secret_headers, user_id="v1", candidates=["drop-ltd"])
    assert body["items"][0]["id"] == "drop-ltd"
    send(client, write_headers, msg(type="track", userId="v1", event="Order Completed", properties={"total_minor": 4900},
                                    messageId="v1-buy", timestamp=utcnow().isoformat()))  # fmt: skip
    assert client.get(f"/v1/decisions/{body['decision_id']}", headers=secret_headers).json()["reward"] == 0.49


def test_bad_requests_are_clear(client, secret_headers, catalog):
    assert client.post("/v1/decide", headers=secret_headers, json={"placement": "home"}).status_code == 422
    r = client.post(
        "/v1/decide",
        headers=secret_headers,
        json={"placement": "home", "user_id": "x", "candidates": ["nope"]},
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_candidates"
    assert client.get("/v1/decisions/dec_missing", headers=secret_headers).status_code == 404


@pytest.mark.server
def test_a_running_server_picks_up_new_snapshots(live_server: LiveServer, tmp_path):
    ws = json.loads(live_server.cli("workspace", "create", "Snapshots", "--json").stdout)
    actions = tmp_path / "actions.yaml"
    actions.write_text(json.dumps(CATALOG))  # JSON is YAML
    live_server.cli("actions", "load", "-w", ws["id"], str(actions))
    import httpx

    secret = bearer(ws["secret_key"])
    candidates = {"placement": "home", "candidates": ["lesson-free", "quiz"]}
    with httpx.Client(base_url=live_server.url, auth=(ws["write_key"], ""), timeout=30) as http:
        for i in range(5):
            assert (
                http.post(
                    "/v1/page", json={"anonymousId": f"snap-{i}", "messageId": f"snap-p-{i}"}
                ).status_code
                == 200
            )
    with httpx.Client(base_url=live_server.url, headers=secret, timeout=30) as http:
        shown = [
            http.post("/v1/decide", json={"anonymous_id": f"snap-{i}", **candidates}).json() for i in range(5)
        ]
    assert {d["model_version"] for d in shown} == {0}
    with httpx.Client(base_url=live_server.url, auth=(ws["write_key"], ""), timeout=30) as http:
        for i, d in enumerate(shown):
            event = "Lesson Completed" if d["items"][0]["id"] == "lesson-free" else "Quiz Completed"
            assert (
                http.post(
                    "/v1/track",
                    json={"anonymousId": f"snap-{i}", "event": event, "messageId": f"snap-ev-{i}"},
                ).status_code
                == 200
            )
    out = live_server.cli("learn", "-w", ws["id"], "--placement", "home").stdout
    assert "home: learned 5 rewards -> model version 1" in out
    with httpx.Client(base_url=live_server.url, headers=secret, timeout=30) as http:
        after = [
            http.post("/v1/decide", json={"anonymous_id": f"snap-new-{i}", **candidates}).json()
            for i in range(20)
        ]
    # The holdout share (10%, keyed on workspace and buyer) is served rules-only with version 0; every
    # other decision must come from the new snapshot.
    served = [d for d in after if not d["holdout"]]
    assert len(served) >= 10
    assert {d["model_version"] for d in served} == {1}
    assert {d["model_version"] for d in after if d["holdout"]} <= {0}
