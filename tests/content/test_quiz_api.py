"""The hosted quiz page and its form, the JSON quiz, and the theme reaching the rendered deliverable."""

from __future__ import annotations

from urllib.parse import urlencode

from tests.assembly.test_artifacts_api import QUIZ, buyer, setup_workspace

from offerloop.assembly import service as assembly_service


def test_hosted_page_posts_answers_that_become_events(client, workspace, secret_headers):
    assert client.put("/v1/quizzes", headers=secret_headers, json={"text": QUIZ}).status_code == 200
    page = client.get(
        "/v1/quizzes/intake/page", params={"key": workspace.write_key, "anonymous_id": "visitor-1"}
    )
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    for needle in (
        'name="q.stage"',
        'value="idea"',
        'name="q.confidence"',
        'name="q.goal"',
        'value="visitor-1"',
    ):
        assert needle in html
    form = urlencode(
        {"anonymous_id": "visitor-1", "q.stage": "launching", "q.confidence": "4", "q.goal": "ship it"}
    )
    r = client.post(f"/v1/quizzes/intake/answers?key={workspace.write_key}", content=form,
                    headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert r.status_code == 200 and "Thank you" in r.text
    found = client.get("/v1/buyers/lookup", headers=secret_headers, params={"anonymous_id": "visitor-1"})
    assert found.status_code == 200
    events = client.get(f"/v1/buyers/{found.json()['id']}/events", headers=secret_headers).json()["items"]
    quiz_event = next(e for e in events if e["name"] == "Quiz Completed")
    assert quiz_event["properties"]["answers"] == {"stage": "launching", "confidence": 4, "goal": "ship it"}


def test_a_refused_form_is_shown_again_with_the_reason_and_quarantined(client, workspace, secret_headers):
    client.put("/v1/quizzes", headers=secret_headers, json={"text": QUIZ})
    form = urlencode({"anonymous_id": "visitor-2", "q.stage": "nope"})
    r = client.post(f"/v1/quizzes/intake/answers?key={workspace.write_key}", content=form,
                    headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert r.status_code == 422 and "<form" in r.text
    listed = client.get("/v1/quarantine", headers=secret_headers).json()["items"]
    assert [q["reason_code"] for q in listed] == ["invalid_answers"]


def test_secret_keys_are_refused_in_urls(client, workspace, secret_headers):
    client.put("/v1/quizzes", headers=secret_headers, json={"text": QUIZ})
    r = client.get("/v1/quizzes/intake/page", params={"key": workspace.secret_key})
    assert r.status_code == 401


def test_quiz_json_for_write_keys(client, write_headers, secret_headers):
    client.put("/v1/quizzes", headers=secret_headers, json={"text": QUIZ})
    body = client.get("/v1/quizzes/intake", headers=write_headers).json()
    assert [q["id"] for q in body["questions"]] == ["stage", "confidence", "goal"]
    assert client.get("/v1/quizzes/missing", headers=write_headers).status_code == 404


def test_workspace_theme_reaches_the_html(client, db, write_headers, secret_headers):
    setup_workspace(client, secret_headers)
    r = client.put(
        "/v1/theme", headers=secret_headers, json={"primary": "#123456", "creator_name": "Rowan Vale"}
    )
    assert r.status_code == 200 and r.json()["version"] == 1
    bad = client.put("/v1/theme", headers=secret_headers, json={"colour": "red"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_theme"
    buyer(client, write_headers, "tia", "Tia", "idea", 3, "")
    art = client.post(
        "/v1/artifacts", headers=secret_headers, json={"user_id": "tia", "policy": "starter-workbook"}
    ).json()
    assembly_service.run_pending(db=db)
    link = client.get(
        f"/v1/artifacts/{art['id']}/download", headers=secret_headers, params={"format": "html"}
    ).json()
    html = client.get(link["url"]).text
    assert "#123456" in html and "Rowan Vale" in html
