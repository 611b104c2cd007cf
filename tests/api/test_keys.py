from __future__ import annotations

from tests.conftest import basic, bearer, msg


def test_keys_are_hashed_listed_and_revocable(client, db, workspace, secret_headers):
    created = client.post("/v1/keys", headers=secret_headers, json={"kind": "write", "name": "landing page"})
    assert created.status_code == 201
    key = created.json()
    assert key["key"].startswith("wk_") and key["prefix"] == key["key"][:10]
    listed = client.get("/v1/keys", headers=secret_headers).json()["items"]
    assert sorted(k["name"] for k in listed) == ["default secret key", "default write key", "landing page"]
    assert all("key" not in k and "key_hash" not in k for k in listed)

    ok = client.post("/v1/track", headers=basic(key["key"]), json=msg(userId="k1", event="e"))
    assert ok.status_code == 200
    revoked = client.delete(f"/v1/keys/{key['id']}", headers=secret_headers)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    refused = client.post("/v1/track", headers=basic(key["key"]), json=msg(userId="k1", event="e"))
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_key"
    # the stored hash is not the key
    from sqlalchemy import select

    from offerloop.models import ApiKey

    with db.read() as session:
        hashes = session.scalars(select(ApiKey.key_hash).where(ApiKey.workspace_id == workspace.id)).all()
    assert key["key"] not in hashes and len(hashes) == 3


def test_write_key_cannot_manage_keys_and_keys_are_scoped(client, workspace, other_workspace):
    assert (
        client.post("/v1/keys", headers=basic(workspace.write_key), json={"kind": "secret"}).status_code
        == 403
    )
    mine = client.get("/v1/keys", headers=bearer(workspace.secret_key)).json()["items"]
    theirs = bearer(other_workspace.secret_key)
    assert client.delete(f"/v1/keys/{mine[0]['id']}", headers=theirs).status_code == 404
    assert (
        client.post("/v1/keys", headers=bearer(workspace.secret_key), json={"kind": "admin"}).status_code
        == 422
    )


def test_keys_page_oldest_first_with_a_cursor(client, secret_headers):
    for i in range(3):
        client.post("/v1/keys", headers=secret_headers, json={"kind": "write", "name": f"k{i}"})
    first = client.get("/v1/keys", headers=secret_headers, params={"limit": 2}).json()
    rest = client.get(
        "/v1/keys", headers=secret_headers, params={"limit": 4, "cursor": first["next_cursor"]}
    ).json()
    names = [k["name"] for k in first["items"] + rest["items"]]
    assert names[2:] == ["k0", "k1", "k2"] and sorted(names[:2]) == [
        "default secret key",
        "default write key",
    ]
    assert rest["next_cursor"] is None
    for params in (
        {"cursor": "garbage"},
        {"cursor": first["next_cursor"][:-2]},
        {"limit": 0},
        {"limit": 10**9},
    ):
        r = client.get("/v1/keys", headers=secret_headers, params=params)
        assert r.status_code == 422, params
