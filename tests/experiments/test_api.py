"""The experiments API: validation, workspace boundaries, sticky assignment, pause/stop and weights."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from tests.conftest import bearer
from tests.experiments.helpers import experiment, send, track

from offerloop.workspaces.schemas import WorkspaceCreated

NOW = datetime.now(UTC)


def _buyers(client: TestClient, write: dict[str, str], *users: str) -> None:
    send(client, write, [track(u, "Page Viewed", NOW, 0) for u in users])


def _assign(client: TestClient, secret: dict[str, str], key: str, user: str) -> dict[str, object]:
    r = client.post(f"/v1/experiments/{key}/assign", headers=secret, json={"user_id": user})
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_create_read_and_list(client: TestClient, secret_headers: dict[str, str]) -> None:
    body = experiment("price", (3, 1), name="Price page", guardrails=[{"key": "refunds", "event": "Order Refunded",
                      "threshold": 0.02}], metrics={"conversion": {"event": "Order Completed",
                      "where": {"offer_key": "course"}, "window_days": 14}})  # fmt: skip
    r = client.post("/v1/experiments", headers=secret_headers, json=body)
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["control"] == "control" and made["status"] == "running" and made["name"] == "Price page"
    assert [(a["key"], a["weight"], a["value"]) for a in made["arms"]] == [
        ("control", 3.0, "control-page"), ("treatment", 1.0, "treatment-page")
    ]  # fmt: skip
    assert made["metrics"]["conversion"] == {"event": "Order Completed", "where": {"offer_key": {"eq": "course"}},
                                             "window_days": 14}  # fmt: skip
    assert made["metrics"]["retention_days"] == 30 and made["metrics"]["covariate"] == "revenue"
    assert made["guardrails"][0]["worse"] == "higher"
    assert client.get("/v1/experiments/price", headers=secret_headers).json() == made
    assert client.post("/v1/experiments", headers=secret_headers, json=body).json()["error"]["code"] == (
        "experiment_exists"
    )
    client.post("/v1/experiments", headers=secret_headers, json=experiment("alpha"))
    first = client.get("/v1/experiments", headers=secret_headers, params={"limit": 1}).json()
    assert [e["key"] for e in first["items"]] == ["alpha"]
    rest = client.get(
        "/v1/experiments", headers=secret_headers, params={"cursor": first["next_cursor"]}
    ).json()
    assert [e["key"] for e in rest["items"]] == ["price"] and rest["next_cursor"] is None


def test_bad_input_is_a_422(client: TestClient, secret_headers: dict[str, str]) -> None:
    later, sooner = (NOW + timedelta(days=2)).isoformat(), NOW.isoformat()
    bad = [
        experiment("zero", (0, 0)),  # weights that do not sum to a positive number
        experiment("neg", (1, -1)),
        experiment("one", (1,)),  # one arm is no experiment
        {**experiment("dup"), "arms": [{"key": "a", "weight": 1}, {"key": "a", "weight": 1}]},
        {**experiment("subj"), "subject": "page"},
        experiment("bad key!"),
        experiment("dates", starts_at=later, ends_at=sooner),
        experiment("naive", starts_at="2026-12-01T00:00:00"),
        experiment("where", metrics={"conversion": {"where": {"amount": {"gte": [1, 2]}}}}),
        experiment("window", metrics={"conversion": {"window_days": 10_000}}),
        experiment("extra", colour="blue"),
        experiment("huge", (1e300, 1)),
    ]
    for body in bad:
        r = client.post("/v1/experiments", headers=secret_headers, json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"]["code"] == "validation_failed"
    assert client.get("/v1/experiments", headers=secret_headers).json()["items"] == []
    assert client.get("/v1/experiments/bad key!", headers=secret_headers).status_code == 422
    assert (
        client.get("/v1/experiments", headers=secret_headers, params={"cursor": "garbage"}).status_code == 422
    )
    assert client.get("/v1/experiments", headers=secret_headers, params={"limit": 10**9}).status_code == 422


def test_unknown_experiment_is_a_404(client: TestClient, secret_headers: dict[str, str]) -> None:
    calls = [
        client.get("/v1/experiments/nope", headers=secret_headers),
        client.get("/v1/experiments/nope/results", headers=secret_headers),
        client.post("/v1/experiments/nope/assign", headers=secret_headers, json={"user_id": "x"}),
        client.post("/v1/experiments/nope/status", headers=secret_headers, json={"status": "paused"}),
        client.post("/v1/experiments/nope/weights", headers=secret_headers, json={"weights": {"control": 1}}),
    ]
    for r in calls:
        assert r.status_code == 404 and r.json()["error"]["code"] == "experiment_not_found", r.text


def test_another_workspace_key_sees_nothing(
    client: TestClient, write_headers: dict[str, str], secret_headers: dict[str, str],
    other_workspace: WorkspaceCreated,
) -> None:  # fmt: skip
    _buyers(client, write_headers, "ada")
    client.post("/v1/experiments", headers=secret_headers, json=experiment("mine"))
    arm = _assign(client, secret_headers, "mine", "ada")
    other = bearer(other_workspace.secret_key)
    assert client.get("/v1/experiments/mine", headers=other).status_code == 404
    assert client.get("/v1/experiments/mine/results", headers=other).status_code == 404
    assert (
        client.post("/v1/experiments/mine/assign", headers=other, json={"user_id": "ada"}).status_code == 404
    )
    assert (
        client.post("/v1/experiments/mine/status", headers=other, json={"status": "stopped"}).status_code
        == 404
    )
    assert client.get("/v1/experiments", headers=other).json()["items"] == []
    # B's own experiment of the same key does not reach A's buyer either
    client.post("/v1/experiments", headers=other, json=experiment("mine"))
    r = client.post("/v1/experiments/mine/assign", headers=other, json={"buyer_id": arm["buyer_id"]})
    assert r.status_code == 404 and r.json()["error"]["code"] == "buyer_not_found"
    assert client.get("/v1/experiments/mine/results", headers=other).json()["exposed"] == 0
    assert client.get("/v1/experiments/mine", headers=write_headers).status_code == 403  # a write key


def test_assignment_is_sticky_and_needs_one_known_buyer(
    client: TestClient, write_headers: dict[str, str], secret_headers: dict[str, str]
) -> None:
    _buyers(client, write_headers, *(f"u{i}" for i in range(20)))
    client.post("/v1/experiments", headers=secret_headers, json=experiment("sticky"))
    first = {f"u{i}": _assign(client, secret_headers, "sticky", f"u{i}") for i in range(20)}
    assert all(a["first_exposure"] and a["exposed"] for a in first.values())
    assert {a["arm"] for a in first.values()} == {"control", "treatment"}
    again = _assign(client, secret_headers, "sticky", "u0")
    assert again["arm"] == first["u0"]["arm"] and again["first_exposure"] is False
    assert again["exposed_at"] == first["u0"]["exposed_at"]
    by_id = client.post("/v1/experiments/sticky/assign", headers=secret_headers,
                        json={"buyer_id": first["u1"]["buyer_id"]}).json()  # fmt: skip
    assert by_id["arm"] == first["u1"]["arm"] and by_id["value"] == f"{by_id['arm']}-page"
    # everyone to the treatment from now on: no one exposed moves
    r = client.post("/v1/experiments/sticky/weights", headers=secret_headers,
                    json={"weights": {"control": 0, "treatment": 1}})  # fmt: skip
    assert r.status_code == 200 and [a["weight"] for a in r.json()["arms"]] == [0.0, 1.0]
    for user, a in first.items():
        assert _assign(client, secret_headers, "sticky", user)["arm"] == a["arm"]
    _buyers(client, write_headers, *(f"new{i}" for i in range(10)))
    assert {_assign(client, secret_headers, "sticky", f"new{i}")["arm"] for i in range(10)} == {"treatment"}
    results = client.get("/v1/experiments/sticky/results", headers=secret_headers).json()
    assert results["exposed"] == 30
    controls = sum(1 for a in first.values() if a["arm"] == "control")
    assert {a["arm"]: a["exposed"] for a in results["arms"]} == {
        "control": controls,
        "treatment": 30 - controls,
    }
    # unknown buyer, two identifiers, none
    for body, code in [({"user_id": "ghost"}, 404), ({"buyer_id": "byr_nope"}, 404),
                       ({"user_id": "u0", "anonymous_id": "x"}, 422), ({}, 422), ({"user_id": "   "}, 422)]:  # fmt: skip
        r = client.post("/v1/experiments/sticky/assign", headers=secret_headers, json=body)
        assert r.status_code == code, (body, r.text)
    for weights in ({"control": 0, "treatment": 0}, {"ghost": 1}, {"control": -1}):
        r = client.post("/v1/experiments/sticky/weights", headers=secret_headers, json={"weights": weights})
        assert r.status_code == 422, (weights, r.text)


def test_pause_resume_stop(
    client: TestClient, write_headers: dict[str, str], secret_headers: dict[str, str]
) -> None:
    _buyers(client, write_headers, "in", "late", "later")
    client.post("/v1/experiments", headers=secret_headers, json=experiment("flow", (0, 1)))
    assert _assign(client, secret_headers, "flow", "in")["arm"] == "treatment"

    def status(s: str) -> int:
        return client.post(
            "/v1/experiments/flow/status", headers=secret_headers, json={"status": s}
        ).status_code

    assert status("paused") == 200
    kept = _assign(client, secret_headers, "flow", "in")
    assert (kept["arm"], kept["exposed"], kept["first_exposure"]) == ("treatment", True, False)
    outside = _assign(client, secret_headers, "flow", "late")  # not counted: sees the control
    assert (outside["arm"], outside["exposed"], outside["exposed_at"]) == ("control", False, None)
    assert status("running") == 200
    assert _assign(client, secret_headers, "flow", "late")["first_exposure"] is True
    assert status("stopped") == 200
    stopped = client.get("/v1/experiments/flow", headers=secret_headers).json()
    assert stopped["status"] == "stopped" and stopped["ends_at"] is not None
    assert _assign(client, secret_headers, "flow", "later")["exposed"] is False
    assert status("running") == 409 and status("paused") == 409 and status("stopped") == 200
    r = client.post("/v1/experiments/flow/weights", headers=secret_headers, json={"weights": {"control": 1}})
    assert r.status_code == 409 and r.json()["error"]["code"] == "experiment_stopped"
    assert (
        client.post("/v1/experiments/flow/status", headers=secret_headers, json={"status": "x"}).status_code
        == 422
    )
    assert client.get("/v1/experiments/flow/results", headers=secret_headers).json()["exposed"] == 2


def test_not_yet_started_exposes_no_one(
    client: TestClient, write_headers: dict[str, str], secret_headers: dict[str, str]
) -> None:
    _buyers(client, write_headers, "early")
    body = experiment("soon", starts_at=(NOW + timedelta(days=1)).isoformat())
    assert client.post("/v1/experiments", headers=secret_headers, json=body).status_code == 201
    assert _assign(client, secret_headers, "soon", "early")["exposed"] is False


def test_results_of_an_empty_experiment(client: TestClient, secret_headers: dict[str, str]) -> None:
    client.post("/v1/experiments", headers=secret_headers, json=experiment("empty", (1, 1, 1)))
    out = client.get("/v1/experiments/empty/results", headers=secret_headers).json()
    assert out["exposed"] == 0 and out["srm"] is None and out["personas"] == []
    assert [a["arm"] for a in out["arms"]] == ["control", "treatment", "v2"]
    assert all(a["conversion_rate"] is None and a["revenue_per_buyer"] is None for a in out["arms"])
    assert [v["arm"] for v in out["variants"]] == ["treatment", "v2"]
    for v in out["variants"]:
        assert (
            v["conversion"] is None
            and v["revenue_per_buyer"] is None
            and v["bayes_revenue_per_buyer"] is None
            and v["bayes_conversion"] is None  # no one exposed: no evidence either way
        )


def test_an_erased_buyer_is_not_found_by_id_either(
    client: TestClient, write_headers: dict[str, str], secret_headers: dict[str, str]
) -> None:
    # adversarial finding 7: by buyer_id an erased buyer was enrolled (a new exposure row for an erased person)
    _buyers(client, write_headers, "gone")
    for key in ("before", "post-erase"):
        assert client.post("/v1/experiments", headers=secret_headers, json=experiment(key)).status_code == 201
    buyer_id = _assign(client, secret_headers, "before", "gone")["buyer_id"]
    assert client.delete(f"/v1/buyers/{buyer_id}", headers=secret_headers).status_code == 200
    for body in ({"buyer_id": buyer_id}, {"user_id": "gone"}):
        r = client.post("/v1/experiments/post-erase/assign", headers=secret_headers, json=body)
        assert r.status_code == 404, (body, r.text)
        assert r.json()["error"]["code"] == "buyer_not_found"
    assert client.get("/v1/experiments/post-erase/results", headers=secret_headers).json()["exposed"] == 0
