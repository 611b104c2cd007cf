"""Every download and re-open of a generated asset is an event on the buyer's record (issue 9 item 7b):
once per open — not per range request, HEAD or retry of the same link — recorded through the events service."""

from __future__ import annotations

import time

from tests.assembly.test_artifacts_api import buyer, setup_workspace

from offerloop.assembly import service as assembly_service

EVENT = "Artifact Downloaded"


def _ready(client, db, write_headers, secret_headers) -> tuple[str, str]:
    setup_workspace(client, secret_headers)
    buyer(client, write_headers, "ana", "Ana Lima", "idea", 1, "")
    r = client.post(
        "/v1/artifacts", headers=secret_headers, json={"user_id": "ana", "policy": "starter-workbook"}
    )
    assembly_service.run_pending(db=db)
    buyer_id = client.get("/v1/buyers/lookup", headers=secret_headers, params={"user_id": "ana"}).json()["id"]
    return r.json()["id"], buyer_id


def _opens(client, secret_headers, buyer_id: str) -> list[dict]:
    items = client.get(f"/v1/buyers/{buyer_id}/events", headers=secret_headers).json()["items"]
    return [e["properties"] for e in reversed(items) if e["name"] == EVENT]


def _link(client, secret_headers, art: str, fmt: str = "pdf") -> str:
    r = client.get(f"/v1/artifacts/{art}/download", headers=secret_headers, params={"format": fmt})
    assert r.status_code == 200, r.text
    return r.json()["url"]


def test_a_download_and_a_reopen_are_events_on_the_buyer_record(
    client, db, settings, workspace, write_headers, secret_headers
):
    art, buyer_id = _ready(client, db, write_headers, secret_headers)
    assert _opens(client, secret_headers, buyer_id) == []
    url = _link(client, secret_headers, art)
    whole = client.get(url)
    assert whole.status_code == 200 and whole.headers["accept-ranges"] == "bytes"
    expected = {"artifact_id": art, "version": 1, "format": "pdf", "policy_id": "starter-workbook"}
    assert _opens(client, secret_headers, buyer_id) == [{**expected, "first_open": True, "open": "first"}]

    # the same open: a viewer's range requests, a HEAD, a retry of the same link
    size = len(whole.content)
    part = client.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == whole.content[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{size}"
    assert client.get(url, headers={"Range": f"bytes=-{size + 5}"}).content == whole.content
    head = client.head(url)
    assert head.status_code == 200 and head.headers["content-length"] == str(size) and head.content == b""
    assert client.get(url).content == whole.content
    assert len(_opens(client, secret_headers, buyer_id)) == 1

    # the buyer comes back an hour later: a new link, a re-open (in another format too)
    with db.read() as session:
        later = assembly_service.download_link(session=session, workspace_id=workspace.id, artifact_id=art,
                                               fmt="pdf", secret=settings.secret, now=time.time() + 3600).url  # fmt: skip
    assert later != url and client.get(later).status_code == 200
    assert (
        client.get(_link(client, secret_headers, art, "markdown"), headers={"Range": "bytes=0-"}).status_code
        == 206
    )
    assert _opens(client, secret_headers, buyer_id) == [
        {**expected, "first_open": True, "open": "first"},
        {**expected, "first_open": False, "open": "reopen"},
        {**expected, "format": "markdown", "first_open": False, "open": "reopen"},
    ]


def test_refused_and_unsatisfiable_requests_record_nothing(client, db, write_headers, secret_headers):
    art, buyer_id = _ready(client, db, write_headers, secret_headers)
    url = _link(client, secret_headers, art)
    assert client.get(url.replace("sig=", "sig=0")).status_code == 403
    assert client.get(url, headers={"Range": "bytes=999999999-"}).status_code == 416
    assert client.get(url, headers={"Range": "bytes=5-2"}).status_code == 416
    assert _opens(client, secret_headers, buyer_id) == []
    # a Range header we do not read is answered with the whole file, and that is an open
    assert client.get(url, headers={"Range": "lines=1-2"}).status_code == 200
    assert len(_opens(client, secret_headers, buyer_id)) == 1


def test_the_creators_own_copy_and_the_reviewers_preview_are_not_buyer_opens(
    client, db, write_headers, secret_headers
):
    setup_workspace(client, secret_headers, review="always")
    buyer(client, write_headers, "ben", "Ben", "idea", 1, "")
    art = client.post(
        "/v1/artifacts", headers=secret_headers, json={"user_id": "ben", "policy": "starter-workbook"}
    ).json()["id"]
    assembly_service.run_pending(db=db)
    buyer_id = client.get("/v1/buyers/lookup", headers=secret_headers, params={"user_id": "ben"}).json()["id"]
    preview = client.get(client.get(f"/v1/reviews/{art}", headers=secret_headers).json()["preview_url"])
    assert preview.status_code == 200
    assert _opens(client, secret_headers, buyer_id) == []


FEATURES = """
features:
  - {name: asset_opens, kind: count, match: {event: "Artifact Downloaded"}}
  - {name: asset_reopens, kind: count, match: {event: "Artifact Downloaded", where: {open: reopen}}}
  - {name: assets_opened, kind: distinct_count, match: {event: "Artifact Downloaded"}, value: artifact_id}
"""


def test_features_count_opens_and_reopens_from_the_events(
    client, db, settings, workspace, write_headers, secret_headers
):
    art, buyer_id = _ready(client, db, write_headers, secret_headers)
    r = client.put("/v1/features/spec", headers=secret_headers, json=FEATURES)
    assert r.status_code == 200, r.text
    for hours in (0, 1, 2):
        with db.read() as session:
            url = assembly_service.download_link(session=session, workspace_id=workspace.id, artifact_id=art, fmt="pdf",
                                                 secret=settings.secret, now=time.time() + 3600 * hours).url  # fmt: skip
        assert client.get(url).status_code == 200
        assert client.get(url, headers={"Range": "bytes=500-"}).status_code == 206  # same open
    features = client.get(f"/v1/buyers/{buyer_id}/state", headers=secret_headers).json()["features"]
    assert (features["asset_opens"], features["asset_reopens"], features["assets_opened"]) == (3, 2, 1)


def test_the_same_long_lived_link_used_again_later_is_a_reopen(
    client, db, write_headers, secret_headers, monkeypatch
):
    """An e-mail's link is signed for 30 days: the buyer opening it again tomorrow re-opens the asset (one open
    per link and half hour; retries within the half hour stay one)."""
    from datetime import timedelta

    from offerloop.assembly import downloads
    from offerloop.core.clock import utcnow

    art, buyer_id = _ready(client, db, write_headers, secret_headers)
    url = _link(client, secret_headers, art)
    now = utcnow()
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(days=2)  # at a half hour's start
    for minutes, times in ((0, 2), (20, 1), (40, 1), (24 * 60, 2)):
        monkeypatch.setattr(downloads, "utcnow", lambda m=minutes: start + timedelta(minutes=m))
        for _ in range(times):
            assert client.get(url).status_code == 200
    assert [o["open"] for o in _opens(client, secret_headers, buyer_id)] == ["first", "reopen", "reopen"]


def test_a_reload_across_a_half_hour_boundary_is_the_same_open(
    client, db, write_headers, secret_headers, monkeypatch
):
    from datetime import timedelta

    from offerloop.assembly import downloads
    from offerloop.core.clock import utcnow

    art, buyer_id = _ready(client, db, write_headers, secret_headers)
    url = _link(client, secret_headers, art)
    boundary = utcnow().replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
    for offset in (-2, 2, 25 * 60, 31 * 60):  # seconds around the boundary; then 25 and 31 minutes after it
        monkeypatch.setattr(downloads, "utcnow", lambda o=offset: boundary + timedelta(seconds=o))
        assert client.get(url).status_code == 200
    assert [o["open"] for o in _opens(client, secret_headers, buyer_id)] == ["first", "reopen"]
