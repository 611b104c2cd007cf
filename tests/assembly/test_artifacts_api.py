"""The assembly pipeline through the HTTP API: corpus, quiz, policy, 202 + preview, render job, review,
signed download, provenance, versioning — on the real database."""

from __future__ import annotations

import io
from pathlib import Path

import pypdf
import pytest
from tests.conftest import msg

from offerloop.assembly import service as assembly_service
from offerloop.pipeline import log as pipeline_log

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo"

ATOMS = {
    "welcome": """---
id: welcome
title: "Welcome, {{ buyer.first_name | friend }}"
kind: snippet
tags: [welcome]
minutes: 2
---
This workbook follows your answers: you said your goal is {{ answers.goal | not given }}.
""",
    "price-anchor": """---
id: price-anchor
title: Anchor your price
kind: lesson
tags: [pricing]
level: 1
persona_fit: [deal_seeker]
minutes: 10
ai_rewrite: true
---
## Why anchors work

Show the full value before the price. Buyers compare against the first number they see.

- [ ] Write down the value of the outcome
- [ ] Put the price after it
""",
    "launch-week": """---
id: launch-week
title: Plan your launch week
kind: checklist
tags: [launch]
level: 2
minutes: 15
---
- [ ] Pick the launch day
- [ ] Write three emails
- [ ] Invite ten early buyers
""",
    "validate-idea": """---
id: validate-idea
title: Validate the idea first
kind: exercise
tags: [validation]
level: 1
minutes: 20
---
Talk to five people who have the problem. Ask what they tried and what it cost them.
""",
}

QUIZ = """
id: intake
title: Three questions
questions:
  - id: stage
    prompt: Where are you?
    type: single
    options:
      - {value: idea, label: Just an idea, tags: [validation]}
      - {value: launching, label: About to launch, tags: [launch]}
  - id: confidence
    prompt: How confident are you about pricing?
    type: scale
    min: 1
    max: 5
    score: pricing_confidence
  - id: goal
    prompt: Your goal for the next 30 days?
    type: text
    required: false
"""

POLICY = """
id: starter-workbook
deliverable: workbook
title: "{{ buyer.first_name | Your }} starter workbook"
review: {REVIEW}
sections:
  - key: start
    title: Start here
    slots:
      - key: hello
        tags_any: [welcome]
        fallback: {title: Hello, markdown: "Welcome."}
  - key: path
    title: Your path
    slots:
      - key: stage
        choose: 1
        tags_from_answers: [stage]
        fallback: {title: Next, markdown: "Pick one small step."}
  - key: pricing
    title: Pricing
    when: {score: pricing_confidence, lte: 2}
    slots:
      - key: anchor
        tags_any: [pricing]
        fallback: {title: Pricing, markdown: "Price after value."}
"""


def setup_workspace(client, secret_headers, review: str = "never") -> None:
    r = client.post(
        "/v1/content/sync",
        headers=secret_headers,
        json={"atoms": [{"text": t, "path": f"{k}.md"} for k, t in ATOMS.items()]},
    )
    assert r.status_code == 200, r.text
    assert sorted(a["id"] for a in r.json()["added"]) == sorted(ATOMS)
    assert client.put("/v1/quizzes", headers=secret_headers, json={"text": QUIZ}).status_code == 200
    r = client.put("/v1/policies", headers=secret_headers, json={"text": POLICY.replace("{REVIEW}", review)})
    assert r.status_code == 200, r.text
    assert [f for f in r.json()["findings"] if f["severity"] == "error"] == []


def buyer(client, write_headers, user_id: str, name: str, stage: str, confidence: int, goal: str) -> None:
    r = client.post(
        "/v1/identify",
        headers=write_headers,
        json=msg(userId=user_id, messageId=f"{user_id}-id", traits={"name": name}),
    )
    assert r.status_code == 200, r.text
    r = client.post("/v1/quizzes/intake/answers", headers=write_headers,
                    json={"user_id": user_id, "answers": {"stage": stage, "confidence": confidence, "goal": goal}})  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "accepted"


def test_two_buyers_get_different_deliverables_with_full_provenance(
    client, db, write_headers, secret_headers
):
    setup_workspace(client, secret_headers)
    buyer(client, write_headers, "ana", "Ana Lima", "idea", 1, "sell my first template")
    buyer(client, write_headers, "ben", "Ben Ode", "launching", 5, "launch next week")

    made = {}
    for user in ("ana", "ben"):
        r = client.post(
            "/v1/artifacts", headers=secret_headers, json={"user_id": user, "policy": "starter-workbook"}
        )
        assert r.status_code == 202, r.text
        body = r.json()
        assert body["status"] == "queued" and body["version"] == 1
        assert "Start here" in body["preview_html"]
        made[user] = body
    # the outline is the selection: Ana (idea, low confidence) gets validation + pricing; Ben gets launch only
    assert made["ana"]["outline"] == [
        {"key": "start", "title": "Start here", "blocks": ["Welcome, Ana"]},
        {"key": "path", "title": "Your path", "blocks": ["Validate the idea first"]},
        {"key": "pricing", "title": "Pricing", "blocks": ["Anchor your price"]},
    ]
    assert made["ben"]["outline"] == [
        {"key": "start", "title": "Start here", "blocks": ["Welcome, Ben"]},
        {"key": "path", "title": "Your path", "blocks": ["Plan your launch week"]},
    ]

    done = assembly_service.run_pending(db=db)
    assert sorted(status for _, _, status in done) == ["ready", "ready"]

    ana = client.get(f"/v1/artifacts/{made['ana']['id']}", headers=secret_headers).json()
    assert ana["status"] == "ready"
    prov = ana["provenance"]
    assert prov["policy_id"] == "starter-workbook" and len(prov["policy_version"]) == 16
    assert [a["id"] for a in prov["atoms"]] == ["welcome", "validate-idea", "price-anchor"]
    assert all(len(a["version"]) == 16 for a in prov["atoms"])
    assert prov["inputs"]["answers"] == {"stage": "idea", "confidence": 1, "goal": "sell my first template"}
    assert prov["inputs"]["scores"] == {"pricing_confidence": 1.0}
    assert prov["render_engine"].startswith("typst ")
    assert prov["rewriter"] is None and prov["guard"] == []
    assert {f["format"] for f in ana["files"]} == {"pdf", "html", "email", "markdown"}

    link = client.get(f"/v1/artifacts/{made['ana']['id']}/download", headers=secret_headers).json()
    pdf = client.get(link["url"])
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    reader = pypdf.PdfReader(io.BytesIO(pdf.content))
    text = "\n".join(page.extract_text() for page in reader.pages)
    for expected in ("Ana Lima", "Validate the idea first", "Anchor your price"):
        assert expected in text
    assert "Plan your launch week" not in text
    assert next(f["pages"] for f in ana["files"] if f["format"] == "pdf") == len(reader.pages) >= 2
    # a tampered or expired link is refused
    assert client.get(link["url"].replace("sig=", "sig=0")).status_code == 403
    md = client.get(
        f"/v1/artifacts/{made['ben']['id']}/download", headers=secret_headers, params={"format": "markdown"}
    ).json()
    assert "Plan your launch week" in client.get(md["url"]).text


def test_an_artifact_requested_right_after_the_buyers_events_sees_them(
    client, db, write_headers, secret_headers
):
    setup_workspace(client, secret_headers)
    pipeline_log.set_inline(db, False)  # as in a server whose consumers have not reached the events yet
    buyer(client, write_headers, "ana", "Ana Lima", "idea", 1, "sell my first template")
    r = client.post(
        "/v1/artifacts", headers=secret_headers, json={"user_id": "ana", "policy": "starter-workbook"}
    )
    assert r.status_code == 202, r.text
    assert r.json()["outline"] == [
        {"key": "start", "title": "Start here", "blocks": ["Welcome, Ana"]},
        {"key": "path", "title": "Your path", "blocks": ["Validate the idea first"]},
        {"key": "pricing", "title": "Pricing", "blocks": ["Anchor your price"]},
    ]


def test_the_review_gate_holds_delivery_until_approved(client, db, write_headers, secret_headers):
    setup_workspace(client, secret_headers, review="always")
    buyer(client, write_headers, "cy", "Cy Park", "idea", 4, "")
    art = client.post(
        "/v1/artifacts", headers=secret_headers, json={"user_id": "cy", "policy": "starter-workbook"}
    ).json()
    assembly_service.run_pending(db=db)
    got = client.get(f"/v1/artifacts/{art['id']}", headers=secret_headers).json()
    assert got["status"] == "awaiting_review" and got["review"]["reason"] == "policy requires review"
    refused = client.get(f"/v1/artifacts/{art['id']}/download", headers=secret_headers)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "not_deliverable"
    assert [q["artifact_id"] for q in client.get("/v1/reviews", headers=secret_headers).json()["items"]] == [
        art["id"]
    ]
    # an edit replaces the block's text, re-renders, and the version is then ready (the reviewer approved it)
    r = client.post(f"/v1/artifacts/{art['id']}/review", headers=secret_headers,
                    json={"action": "edit", "reviewer": "editor@creator", "edits": {"path/0": "Call three past clients this week."}})  # fmt: skip
    assert r.status_code == 200 and r.json()["status"] == "queued"
    assembly_service.run_pending(db=db)
    got = client.get(f"/v1/artifacts/{art['id']}", headers=secret_headers).json()
    assert got["status"] == "ready" and got["provenance"]["reviewer"] == "editor@creator"
    md = client.get(
        f"/v1/artifacts/{art['id']}/download", headers=secret_headers, params={"format": "markdown"}
    ).json()
    assert "Call three past clients this week." in client.get(md["url"]).text
    # reviewing again is refused: it is no longer waiting
    again = client.post(
        f"/v1/artifacts/{art['id']}/review",
        headers=secret_headers,
        json={"action": "approve", "reviewer": "x"},
    )
    assert again.status_code == 409


def test_reject_keeps_it_undeliverable(client, db, write_headers, secret_headers):
    setup_workspace(client, secret_headers, review="always")
    buyer(client, write_headers, "dee", "Dee", "idea", 4, "")
    art = client.post(
        "/v1/artifacts", headers=secret_headers, json={"user_id": "dee", "policy": "starter-workbook"}
    ).json()
    assembly_service.run_pending(db=db)
    r = client.post(
        f"/v1/artifacts/{art['id']}/review",
        headers=secret_headers,
        json={"action": "reject", "reviewer": "ed", "note": "off-brand"},
    )
    assert r.json()["status"] == "rejected"
    assert client.get(f"/v1/artifacts/{art['id']}/download", headers=secret_headers).status_code == 409


def test_changed_atom_lists_and_regenerates_affected_artifacts(client, db, write_headers, secret_headers):
    setup_workspace(client, secret_headers)
    buyer(client, write_headers, "eve", "Eve", "idea", 1, "")
    art = client.post(
        "/v1/artifacts", headers=secret_headers, json={"user_id": "eve", "policy": "starter-workbook"}
    ).json()
    assembly_service.run_pending(db=db)
    before = client.get(f"/v1/artifacts/{art['id']}", headers=secret_headers).json()
    old_version = next(a["version"] for a in before["provenance"]["atoms"] if a["id"] == "price-anchor")
    assert client.get("/v1/content/atoms/price-anchor/affected", headers=secret_headers).json()["items"] == []

    changed = ATOMS["price-anchor"].replace("Buyers compare", "People compare")
    r = client.put("/v1/content/atoms", headers=secret_headers, json={"text": changed})
    new_version = r.json()["version"]
    assert new_version != old_version
    affected = client.get("/v1/content/atoms/price-anchor/affected", headers=secret_headers).json()["items"]
    assert affected == [{"artifact_id": art["id"], "version": 1,
                         "atoms": [{"id": "price-anchor", "used": old_version, "current": new_version}]}]  # fmt: skip
    # the old atom version stays readable
    old = client.get(
        "/v1/content/atoms/price-anchor", headers=secret_headers, params={"version": old_version}
    ).json()
    assert "Buyers compare" in old["body"] and old["current"] is False
    r = client.post("/v1/artifacts/regenerate", headers=secret_headers, params={"atom_id": "price-anchor"})
    assert r.status_code == 202 and r.json() == {"regenerated": [{"id": art["id"], "version": 2}]}
    assembly_service.run_pending(db=db)
    after = client.get(f"/v1/artifacts/{art['id']}", headers=secret_headers).json()
    assert after["version"] == 2 and after["status"] == "ready"
    assert (
        after["versions"][1]["changelog"]
        == f"content changed: price-anchor; atom price-anchor {old_version} -> {new_version}"
    )
    assert client.get("/v1/content/atoms/price-anchor/affected", headers=secret_headers).json()["items"] == []


def test_a_quiz_completion_triggers_the_deliverable(client, db, write_headers, secret_headers):
    setup_workspace(client, secret_headers)
    r = client.put("/v1/policies", headers=secret_headers,
                   json={"text": POLICY.replace("{REVIEW}", "never"), "triggers": [{"event": "Quiz Completed"}]})  # fmt: skip
    assert r.json()["triggers"] == [{"event": "Quiz Completed"}]
    buyer(client, write_headers, "fay", "Fay", "launching", 3, "")
    done = assembly_service.run_pending(db=db)
    assert [status for _, _, status in done] == ["ready"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"user_id": "nobody", "policy": "starter-workbook"}, "buyer_not_found"),
        ({"policy": "starter-workbook"}, "validation_failed"),
    ],
)
def test_bad_artifact_requests_are_clear_errors(client, secret_headers, body, code):
    setup_workspace(client, secret_headers)
    r = client.post("/v1/artifacts", headers=secret_headers, json=body)
    assert r.status_code in (404, 422) and r.json()["error"]["code"] == code


def test_invalid_answers_are_refused_and_quarantined(client, write_headers, secret_headers):
    setup_workspace(client, secret_headers)
    r = client.post(
        "/v1/quizzes/intake/answers",
        headers=write_headers,
        json={"user_id": "g", "answers": {"stage": "maybe", "confidence": 9}},
    )
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "invalid_answers"
    quarantined = client.get(
        f"/v1/quarantine/{err['details']['quarantine_id']}", headers=secret_headers
    ).json()
    assert quarantined["reason_code"] == "invalid_answers"


def test_corpus_errors_name_file_and_line(client, secret_headers):
    bad = "---\nid: x\ntitle: X\nkind: lesson\nlevel: high\n---\nBody\n"
    r = client.post(
        "/v1/content/sync", headers=secret_headers, json={"atoms": [{"text": bad, "path": "pricing/x.md"}]}
    )
    assert r.status_code == 422
    assert r.json()["error"]["message"].startswith("pricing/x.md:5: level")
