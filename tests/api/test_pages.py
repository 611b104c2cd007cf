"""Every list endpoint pages one way (`?limit=&cursor=` in, `{items, next_cursor}` out) and answers a careless
or hostile client (garbage cursors, absurd limits, another workspace's key or cursor) with a 4xx, never a 500."""

from __future__ import annotations

import base64

import orjson
from tests.conftest import bearer, msg

from offerloop.core.pages import encode_cursor

LISTS = (
    "/v1/quarantine",
    "/v1/pipeline/parked",
    "/v1/buyers/{buyer}/events",
    "/v1/merges",
    "/v1/identity-conflicts",
    "/v1/personas",
    "/v1/keys",
    "/v1/actions",
    "/v1/content/atoms",
    "/v1/policies",
    "/v1/reviews",
)
ATOM = "---\nid: {id}\ntitle: Atom {id}\nkind: lesson\ntags: [{tag}]\n---\nBody of {id}.\n"


def _buyer(client, write_headers, secret_headers) -> str:  # type: ignore[no-untyped-def]
    client.post("/v1/track", headers=write_headers, json=msg(userId="pager", event="Seen", messageId="p-1"))
    return client.get("/v1/buyers/lookup", headers=secret_headers, params={"user_id": "pager"}).json()["id"]


def _forged(*key: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(key))).decode().rstrip("=")


def test_garbage_cursors_and_limits_are_422_with_a_code(client, write_headers, secret_headers) -> None:
    buyer = _buyer(client, write_headers, secret_headers)
    bad_cursors = ["%%%", "not-a-cursor", "x" * 600, _forged({"a": 1}), _forged(1, 2, 3, 4), _forged(None),
                   base64.urlsafe_b64encode(b"\xff\xfe").decode(), _forged(True)]  # fmt: skip
    for path in LISTS:
        url = path.format(buyer=buyer)
        ok = client.get(url, headers=secret_headers, params={"limit": 1})
        assert ok.status_code == 200 and set(ok.json()) == {"items", "next_cursor"}, url
        for cursor in bad_cursors:
            r = client.get(url, headers=secret_headers, params={"cursor": cursor})
            assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_cursor"), (
                url,
                cursor,
                r.text,
            )
        for limit in (0, -1, 501, 10**9, "ten"):
            r = client.get(url, headers=secret_headers, params={"limit": limit})
            assert (r.status_code, r.json()["error"]["code"]) == (422, "validation_failed"), (url, limit)
        r = client.get(url, headers=secret_headers, params={"limit": 10**30})
        assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_input"), url
        r = client.get(url, headers=write_headers)
        assert (r.status_code, r.json()["error"]["code"]) == (403, "secret_key_required"), url


def test_a_cursor_carries_no_access_to_another_workspace(
    client, write_headers, secret_headers, other_workspace
) -> None:
    buyer = _buyer(client, write_headers, secret_headers)
    theirs = bearer(other_workspace.secret_key)
    page = client.get(f"/v1/buyers/{buyer}/events", headers=secret_headers, params={"limit": 1}).json()
    assert [e["message_id"] for e in page["items"]] == ["p-1"]
    forged = encode_cursor([page["items"][0]["id"] + 1])
    r = client.get(f"/v1/buyers/{buyer}/events", headers=theirs, params={"cursor": forged})
    assert (r.status_code, r.json()["error"]["code"]) == (404, "buyer_not_found")
    keys = client.get("/v1/keys", headers=theirs, params={"cursor": encode_cursor(["0000", ""])}).json()
    assert sorted(k["name"] for k in keys["items"]) == ["default secret key", "default write key"]
    assert all(k["id"] not in {x["id"] for x in client.get("/v1/keys", headers=secret_headers).json()["items"]}
               for k in keys["items"])  # fmt: skip


def test_atoms_page_by_id_with_filters(client, secret_headers) -> None:
    for i, tag in enumerate(["pricing", "launch", "pricing", "pricing"]):
        r = client.put(
            "/v1/content/atoms", headers=secret_headers, json={"text": ATOM.format(id=f"a-{i}", tag=tag)}
        )
        assert r.status_code == 200, r.text
    seen, cursor = [], None
    while True:
        page = client.get(
            "/v1/content/atoms", headers=secret_headers, params={"limit": 2, "tag": "pricing", **({"cursor": cursor} if cursor else {})}
        ).json()  # fmt: skip
        seen += [a["id"] for a in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["a-0", "a-2", "a-3"]
    assert client.get("/v1/content/atoms", headers=secret_headers, params={"kind": "template"}).json() == {
        "items": [],
        "next_cursor": None,
    }
    assert "body" not in client.get("/v1/content/atoms", headers=secret_headers).json()["items"][0]
