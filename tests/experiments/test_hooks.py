"""Experiment hooks over HTTP (issue 13, item 4): a journey branch on ``experiments.<key>``, a policy experiment
on a /v1/decide placement, and an experiment pinning an offer's variant on GET /v1/offers. Each: sticky arm,
exposure logged once, another workspace's experiment invisible (404), a stopped experiment."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from tests.conftest import bearer, msg
from tests.delivery.test_journeys import identify, messages, run_jobs, track

from offerloop.core.clock import utcnow
from offerloop.experiments.service import bucket
from offerloop.models import Decision, Exposure

USERS = [f"u{i}" for i in range(8)]


def _exposures(db, workspace_id: str, key: str) -> dict[str, str]:
    """buyer id -> arm of every stored exposure."""
    with db.read() as session:
        rows = session.execute(
            select(Exposure.buyer_id, Exposure.arm).where(
                Exposure.workspace_id == workspace_id, Exposure.experiment_key == key
            )
        ).all()
    return dict(rows)


def _create(client: TestClient, headers: dict[str, str], body: dict[str, Any]) -> Any:
    return client.post("/v1/experiments", headers=headers, json=body)


def _buyer(client: TestClient, headers: dict[str, str], user: str) -> str:
    r = client.get("/v1/buyers/lookup", headers=headers, params={"user_id": user})
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


def _stop(client: TestClient, headers: dict[str, str], key: str) -> None:
    r = client.post(f"/v1/experiments/{key}/status", headers=headers, json={"status": "stopped"})
    assert r.status_code == 200, r.text


# -- journeys: a branch on an experiment's arm ----------------------------------------------------------

SPLIT = """
name: welcome
trigger: {event: Signed Up}
steps:
  - branch:
      when: {experiments.welcome-copy: short}
      then:
        - send: {channel: inapp, subject: "Short", text: "hi"}
          id: short
      else:
        - send: {channel: inapp, subject: "Long", text: "hello there"}
          id: long
"""
COPY_TEST = {"key": "welcome-copy", "subject": "journey", "subject_id": "welcome",
             "arms": [{"key": "long", "weight": 1}, {"key": "short", "weight": 1}]}  # fmt: skip


def _journey_setup(client, secret_headers) -> None:
    r = client.put("/v1/delivery/settings", headers=secret_headers,
                   json={"send_window": {"start": "00:00", "end": "00:00"}, "caps": {}, "overall_cap": None})  # fmt: skip
    assert r.status_code == 200, r.text
    assert _create(client, secret_headers, COPY_TEST).status_code == 201
    r = client.put("/v1/journeys/welcome", headers=secret_headers, json={"yaml": SPLIT})
    assert r.status_code == 200, r.text


def test_a_journey_branch_splits_on_the_buyers_arm(client, db, workspace, write_headers, secret_headers):
    _journey_setup(client, secret_headers)
    for user in USERS:
        identify(client, write_headers, user)
        track(client, write_headers, user, "Signed Up", {}, f"s-{user}")
    run_jobs(db, utcnow())
    buyers = {user: _buyer(client, secret_headers, user) for user in USERS}
    arms = {u: bucket(workspace.id, "welcome-copy", b, COPY_TEST["arms"]) for u, b in buyers.items()}
    assert sorted(set(arms.values())) == ["long", "short"]  # both arms are exercised by these 8 buyers
    sent = {m["buyer_id"]: m["subject"] for m in messages(client, secret_headers)}
    assert sent == {buyers[u]: "Short" if arms[u] == "short" else "Long" for u in USERS}
    # the exposure was logged at the branch: once per buyer, with the arm that chose the message
    assert _exposures(db, workspace.id, "welcome-copy") == {buyers[u]: arms[u] for u in USERS}
    r = client.post("/v1/experiments/welcome-copy/assign", headers=secret_headers, json={"user_id": "u0"})
    assert (r.json()["arm"], r.json()["first_exposure"]) == (arms["u0"], False)
    runs = client.get("/v1/journey-runs", headers=secret_headers).json()["items"]
    assert {r["buyer_id"]: r["state"] for r in runs} == dict.fromkeys(buyers.values(), "completed")


def test_a_stopped_experiment_sends_new_buyers_down_the_control_path(
    client, db, workspace, write_headers, secret_headers
):
    _journey_setup(client, secret_headers)
    _stop(client, secret_headers, "welcome-copy")
    for user in USERS:
        identify(client, write_headers, user)
        track(client, write_headers, user, "Signed Up", {}, f"s-{user}")
    run_jobs(db, utcnow())
    # control is "long": nobody is exposed, everybody gets the control's message
    assert {m["subject"] for m in messages(client, secret_headers)} == {"Long"}
    assert len(messages(client, secret_headers)) == len(USERS)
    assert _exposures(db, workspace.id, "welcome-copy") == {}


def test_a_journey_naming_another_workspaces_experiment_is_a_404(client, secret_headers, other_workspace):
    other = bearer(other_workspace.secret_key)
    assert _create(client, other, COPY_TEST).status_code == 201  # exists, but in the other workspace
    r = client.put("/v1/journeys/welcome", headers=secret_headers, json={"yaml": SPLIT})
    assert r.status_code == 404, r.text
    assert r.json()["error"] == {"code": "experiment_not_found", "details": None,
                                 "message": "experiment 'welcome-copy' does not exist in this workspace"}  # fmt: skip
    # once this workspace has it, the journey is stored
    assert _create(client, secret_headers, COPY_TEST).status_code == 201
    assert client.put("/v1/journeys/welcome", headers=secret_headers, json={"yaml": SPLIT}).status_code == 200


def test_only_a_branch_reads_experiments(client, secret_headers):
    assert _create(client, secret_headers, COPY_TEST).status_code == 201
    text = SPLIT.replace(
        "trigger: {event: Signed Up}", "trigger: {event: Signed Up, where: {experiments.welcome-copy: short}}"
    )
    r = client.put("/v1/journeys/welcome", headers=secret_headers, json={"yaml": text})
    assert r.status_code == 422, r.text
    assert "'experiments' cannot be read here" in r.text
    whole = SPLIT.replace("experiments.welcome-copy: short", "experiments: short")
    r = client.put("/v1/journeys/welcome", headers=secret_headers, json={"yaml": whole})
    assert r.status_code == 422, r.text
    assert "experiments is read per experiment: experiments.<key>" in r.text


# -- decisions: a policy experiment on a placement -----------------------------------------------------

ACTIONS = [
    {"key": f"a{i}", "kind": "lesson", "title": f"Lesson {i}", "priority": 10 - i,
     "outcome": {"event": "Lesson Completed", "window_days": 7}}
    for i in range(4)
]  # fmt: skip
POLICY_TEST = {"key": "home-policy", "subject": "policy", "subject_id": "home",
               "arms": [{"key": "learned", "weight": 1, "value": "model"},
                        {"key": "rules", "weight": 1, "value": "rules"}]}  # fmt: skip


def _decide(client: TestClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    r = client.post("/v1/decide", headers=headers, json={"placement": "home", "k": 4, **body})
    assert r.status_code == 200, r.text
    return dict(r.json())


def _decide_setup(client, secret_headers, write_headers) -> None:
    assert client.put("/v1/actions", headers=secret_headers, json=ACTIONS).status_code == 200
    for user in USERS:
        identify(client, write_headers, user)


def test_a_policy_experiment_chooses_the_policy_and_the_log_keeps_the_arm(
    client, db, workspace, secret_headers, write_headers
):
    _decide_setup(client, secret_headers, write_headers)
    assert _create(client, secret_headers, POLICY_TEST).status_code == 201
    buyers = {user: _buyer(client, secret_headers, user) for user in USERS}
    arms = {u: bucket(workspace.id, "home-policy", b, POLICY_TEST["arms"]) for u, b in buyers.items()}
    assert sorted(set(arms.values())) == ["learned", "rules"]
    for _ in range(2):  # twice: the same arm, and the exposure logged once
        for user in USERS:
            out = _decide(client, secret_headers, user_id=user)
            assert out["experiment"] == {"key": "home-policy", "arm": arms[user]}
            assert out["holdout"] is False
            if arms[user] == "rules":
                assert (out["policy"], [i["id"] for i in out["items"]]) == ("rules", ["a0", "a1", "a2", "a3"])
            else:
                assert out["policy"] == "model"
            logged = client.get(f"/v1/decisions/{out['decision_id']}", headers=secret_headers).json()
            assert logged["experiment"] == {"key": "home-policy", "arm": arms[user]}
            assert logged["policy"] == out["policy"]
    assert _exposures(db, workspace.id, "home-policy") == {buyers[u]: arms[u] for u in USERS}
    with db.read() as session:
        logged_arms = session.execute(
            select(Decision.experiment_arm, func.count()).where(Decision.workspace_id == workspace.id)
            .group_by(Decision.experiment_arm)
        ).all()  # fmt: skip
    counts = {arm: 2 * sum(a == arm for a in arms.values()) for arm in ("learned", "rules")}
    assert dict(logged_arms) == counts
    # a buyer never seen has no sticky identity: decided as without the experiment, nothing logged
    anon = _decide(client, secret_headers, anonymous_id="visitor-1")
    assert anon["experiment"] is None
    assert len(_exposures(db, workspace.id, "home-policy")) == len(USERS)
    # another placement is not in the experiment
    assert _decide(client, secret_headers, user_id="u0", placement="sidebar")["experiment"] is None


def test_a_stopped_or_foreign_policy_experiment_changes_nothing(
    client, db, workspace, other_workspace, secret_headers, write_headers
):
    _decide_setup(client, secret_headers, write_headers)
    other = bearer(other_workspace.secret_key)
    assert _create(client, other, POLICY_TEST).status_code == 201  # on "home", but the other workspace's
    assert _decide(client, secret_headers, user_id="u0")["experiment"] is None
    assert client.get("/v1/experiments/home-policy", headers=secret_headers).status_code == 404
    assert client.get("/v1/experiments/home-policy/results", headers=secret_headers).status_code == 404
    assert _exposures(db, other_workspace.id, "home-policy") == {}
    # this workspace's own, then stopped: decisions go back to the default policy and log no arm
    assert _create(client, secret_headers, POLICY_TEST).status_code == 201
    first = _decide(client, secret_headers, user_id="u1")
    assert first["experiment"] is not None
    _stop(client, secret_headers, "home-policy")
    after = _decide(client, secret_headers, user_id="u1")
    assert after["experiment"] is None and after["policy"] in ("model", "rules")
    assert (
        client.get(f"/v1/decisions/{after['decision_id']}", headers=secret_headers).json()["experiment"]
        is None
    )
    # once stopped, a new policy experiment may take the placement
    assert _create(client, secret_headers, {**POLICY_TEST, "key": "home-policy-2"}).status_code == 201


def test_policy_experiments_are_validated(client, secret_headers):
    r = _create(client, secret_headers, {**POLICY_TEST, "arms": [
        {"key": "a", "weight": 1, "value": "model"}, {"key": "b", "weight": 1, "value": "bandit"}]})  # fmt: skip
    assert r.status_code == 422, r.text
    assert "one of model, rules or none (arm 'b')" in r.text
    assert _create(client, secret_headers, POLICY_TEST).status_code == 201
    r = _create(client, secret_headers, {**POLICY_TEST, "key": "second"})
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "policy_experiment_running"
    assert r.json()["error"]["details"] == {"experiment": "home-policy"}


def test_without_an_experiment_the_decision_logs_none(client, secret_headers, write_headers):
    _decide_setup(client, secret_headers, write_headers)
    out = _decide(client, secret_headers, user_id="u0")
    assert out["experiment"] is None
    assert (
        client.get(f"/v1/decisions/{out['decision_id']}", headers=secret_headers).json()["experiment"] is None
    )


# -- offers: an experiment pins the variant shown -----------------------------------------------------

CATALOG = """\
offers:
  - key: playbook
    kind: product
    title: "Playbook"
    prices: {USD: 2700}
    components:
      - {component: download, ref: playbook-pdf}
    variants:
      - {key: launch, title: "Playbook (launch price)", price: {USD: 1900}}
      - {key: plain}
"""
PRICE_TEST = {"key": "playbook-price", "subject": "variant", "subject_id": "playbook",
              "arms": [{"key": "control", "weight": 1, "value": "plain"},
                       {"key": "launch", "weight": 1, "value": "launch"}]}  # fmt: skip


def _offers_setup(client, secret_headers, write_headers) -> None:
    r = client.put("/v1/offers/catalog", headers=secret_headers, json={"text": CATALOG})
    assert r.status_code == 200, r.text
    for user in USERS:
        r = client.post("/v1/identify", headers=write_headers, json=msg(userId=user, messageId=f"id-{user}"))
        assert r.status_code == 200, r.text


def _shown(client, headers, user: str) -> dict[str, Any]:
    r = client.get("/v1/offers", headers=headers, params={"user_id": user})
    assert r.status_code == 200, r.text
    [offer] = r.json()["offers"]
    return dict(offer)


def test_an_experiment_pins_the_offer_variant(client, db, workspace, secret_headers, write_headers):
    _offers_setup(client, secret_headers, write_headers)
    assert _create(client, secret_headers, PRICE_TEST).status_code == 201
    buyers = {user: _buyer(client, secret_headers, user) for user in USERS}
    arms = {u: bucket(workspace.id, "playbook-price", b, PRICE_TEST["arms"]) for u, b in buyers.items()}
    assert sorted(set(arms.values())) == ["control", "launch"]
    variant = {"control": ("plain", 2700), "launch": ("launch", 1900)}
    for _ in range(2):
        for user in USERS:
            offer = _shown(client, secret_headers, user)
            assert (offer["variant"]["key"], offer["price"]) == variant[arms[user]]
            assert offer["experiment"] == {"key": "playbook-price", "arm": arms[user]}
    assert _exposures(db, workspace.id, "playbook-price") == {buyers[u]: arms[u] for u in USERS}
    # the checkout sells what was shown
    launch_user = next(u for u in USERS if arms[u] == "launch")
    r = client.get("/v1/offers", headers=secret_headers, params={"user_id": launch_user}).json()
    quote = client.post("/v1/checkout", headers=secret_headers,
                        json={"user_id": launch_user, "offer": "playbook", "decision_id": r["decision_id"]})  # fmt: skip
    assert quote.status_code == 201, quote.text
    assert (quote.json()["total"], quote.json()["lines"][0]["variant"]) == (1900, "launch")


def test_a_stopped_or_foreign_offer_experiment_pins_nothing(
    client, db, workspace, other_workspace, secret_headers, write_headers
):
    _offers_setup(client, secret_headers, write_headers)
    other = bearer(other_workspace.secret_key)
    assert _create(client, other, PRICE_TEST).status_code == 201
    assert _shown(client, secret_headers, "u0")["experiment"] is None  # the other workspace's: not ours
    assert client.post("/v1/experiments/playbook-price/assign", headers=secret_headers,
                       json={"user_id": "u0"}).status_code == 404  # fmt: skip
    assert _create(client, secret_headers, PRICE_TEST).status_code == 201
    _stop(client, secret_headers, "playbook-price")
    for user in USERS:
        assert _shown(client, secret_headers, user)["experiment"] is None  # the engine chooses again
    assert _exposures(db, workspace.id, "playbook-price") == {}
