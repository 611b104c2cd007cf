"""The voice rewriter inside the render job, driven over the HTTP API with a real loopback model server:
the fired guard reaches review, buyers' AI-rewrite consent, the buyer's name and answers never reach the
model, and one hung model does not make every artifact wait."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.assembly.test_artifacts_api import ATOMS, POLICY, QUIZ
from tests.assembly.test_voice import Handler, Harness, atom_of, completion, hangs, sequence
from tests.conftest import msg

from offerloop.assembly import service as assembly_service
from offerloop.assembly.voice import RewriterConfig

# The welcome atom carries the buyer's first name and free-text goal, and may be rewritten here.
PERSONAL_ATOMS = {
    **ATOMS,
    "welcome": """---
id: welcome
title: Welcome
kind: snippet
tags: [welcome]
minutes: 2
ai_rewrite: true
---
Hi {{ buyer.first_name | friend }}, this workbook follows your answers: your goal is {{ answers.goal | not given }}.
""",
}
ORIGINAL = "Show the full value before the price."


@pytest.fixture
def harness() -> Iterator[Harness]:
    h = Harness()
    yield h
    h.close()


def setup(client, secret_headers, review: str = "never") -> None:
    r = client.post("/v1/content/sync", headers=secret_headers,
                    json={"atoms": [{"text": t, "path": f"{k}.md"} for k, t in PERSONAL_ATOMS.items()]})  # fmt: skip
    assert r.status_code == 200, r.text
    assert client.put("/v1/quizzes", headers=secret_headers, json={"text": QUIZ}).status_code == 200
    r = client.put("/v1/policies", headers=secret_headers, json={"text": POLICY.replace("{REVIEW}", review)})
    assert r.status_code == 200, r.text


def make(
    client, write_headers, secret_headers, user: str, traits: dict[str, Any] | None = None
) -> dict[str, Any]:
    r = client.post("/v1/identify", headers=write_headers,
                    json=msg(userId=user, messageId=f"{user}-id", traits={"name": "Ana Lima", **(traits or {})}))  # fmt: skip
    assert r.status_code == 200, r.text
    r = client.post("/v1/quizzes/intake/answers", headers=write_headers,
                    json={"user_id": user, "answers": {"stage": "idea", "confidence": 1, "goal": "sell my pottery course"}})  # fmt: skip
    assert r.status_code == 200, r.text
    r = client.post(
        "/v1/artifacts", headers=secret_headers, json={"user_id": user, "policy": "starter-workbook"}
    )
    assert r.status_code == 202, r.text
    return r.json()


def rewriter(fake, **overrides: Any) -> RewriterConfig:
    return RewriterConfig(**{"base_url": fake.base_url, "model": "voice-test", "timeout_s": 5.0, **overrides})


def markdown_of(client, secret_headers, artifact_id: str) -> str:
    link = client.get(
        f"/v1/artifacts/{artifact_id}/download", headers=secret_headers, params={"format": "markdown"}
    )
    assert link.status_code == 200, link.text
    return client.get(link.json()["url"]).text


def echo(replace: tuple[str, str] | None = None, append: str = ""):
    def behaviour(h: Handler, body: dict[str, Any]) -> None:
        text = atom_of(body)
        if replace:
            text = text.replace(*replace)
        h.reply(200, completion(text.rstrip("\n") + append + "\n"))

    return behaviour


# -- item 2: the fired guard reaches the review decision ------------------------------------------


def test_a_sentence_start_name_is_caught_kept_in_provenance_and_sent_to_review(
    client, write_headers, secret_headers, db, harness
):
    setup(client, secret_headers, review="guard_fired")
    invent = echo(("Show the full value", "Oprah swears by this. Show the full value"))
    fake = harness.serve(invent)
    art = make(client, write_headers, secret_headers, "g1")

    assert [s for _, _, s in assembly_service.run_pending(db=db, rewriter=rewriter(fake))] == [
        "awaiting_review"
    ]

    got = client.get(f"/v1/artifacts/{art['id']}", headers=secret_headers).json()
    assert got["review"]["reason"] == "the grounding guard rejected a rewrite"
    entry = next(g for g in got["provenance"]["guard"] if g["atom_id"] == "price-anchor")
    assert (entry["rewritten"], entry["error"]) == (False, "guard_rejected")
    assert [r["reasons"] for r in entry["rejected"]] == [["name:Oprah"]]
    assert "Oprah swears by this. Show the full value before the price." in entry["rejected"][0]["text"]
    assert client.get(f"/v1/artifacts/{art['id']}/download", headers=secret_headers,
                      params={"format": "markdown"}).status_code == 409  # fmt: skip
    r = client.post(
        f"/v1/artifacts/{art['id']}/review",
        headers=secret_headers,
        json={"action": "approve", "reviewer": "ed"},
    )
    assert r.json()["status"] == "ready"
    text = markdown_of(client, secret_headers, art["id"])
    assert ORIGINAL in text and "Oprah" not in text


def test_a_rejection_followed_by_a_timeout_still_counts_as_the_guard_firing(
    client, write_headers, secret_headers, db, harness
):
    """The path that shipped as ready: with retries, the guard rejected the first answer and the retry
    timed out, so the last error (timeout) hid the rejection from the review decision."""
    setup(client, secret_headers, review="guard_fired")
    # the welcome atom's first answer is an invention, its retry hangs; price-anchor's call hangs
    invent_once = sequence(echo(append=" It doubles your revenue within a month."), hangs)
    fake = harness.serve(lambda h, body: (invent_once if "Hi " in atom_of(body) else hangs)(h, body))
    art = make(client, write_headers, secret_headers, "g2")

    done = assembly_service.run_pending(db=db, rewriter=rewriter(fake, max_attempts=2, timeout_s=1.0))

    assert [s for _, _, s in done] == ["awaiting_review"]
    got = client.get(f"/v1/artifacts/{art['id']}", headers=secret_headers).json()
    assert got["review"]["reason"] == "the grounding guard rejected a rewrite"
    errors = {g["atom_id"]: g["error"] for g in got["provenance"]["guard"]}
    assert errors == {"welcome": "timeout", "price-anchor": "timeout"}
    rejected = {g["atom_id"]: [r["reasons"] for r in g["rejected"]] for g in got["provenance"]["guard"]}
    assert rejected == {
        "welcome": [["claim:doubles your revenue", "claim:within a month"]],
        "price-anchor": [],
    }
    assert len(fake.requests) == 3


# -- item 6: the buyer's identifiers never reach the model; one hung model does not block everyone ------


def test_the_buyer_name_and_answers_are_not_sent_and_are_restored(
    client, write_headers, secret_headers, db, harness
):
    setup(client, secret_headers)
    fake = harness.serve(echo(("this workbook follows", "this workbook is built on")))
    art = make(client, write_headers, secret_headers, "n1", traits={"email": "ana@pottery.example"})

    assert [s for _, _, s in assembly_service.run_pending(db=db, rewriter=rewriter(fake))] == ["ready"]

    sent = [atom_of(r.body) for r in fake.requests]
    assert len(sent) == 2
    assert not any(word in str(r.body) for r in fake.requests for word in ("Ana", "Lima", "pottery"))
    assert "Hi {{ buyer_2 }}, this workbook follows your answers: your goal is {{ buyer_1 }}." in sent
    text = markdown_of(client, secret_headers, art["id"])
    assert "Hi Ana, this workbook is built on your answers: your goal is sell my pottery course." in text
    guard = {
        g["atom_id"]: g
        for g in client.get(f"/v1/artifacts/{art['id']}", headers=secret_headers).json()["provenance"][
            "guard"
        ]
    }
    assert (guard["welcome"]["redacted"], guard["welcome"]["cached"]) == (2, False)
    assert (guard["price-anchor"]["redacted"], guard["price-anchor"]["rewritten"]) == (0, True)


def test_a_hung_model_stops_being_called_for_the_next_artifacts(
    client, write_headers, secret_headers, db, harness
):
    setup(client, secret_headers)
    fake = harness.serve(hangs)
    arts = [make(client, write_headers, secret_headers, f"h{i}") for i in range(3)]
    config = rewriter(fake, timeout_s=0.2, breaker_failures=2, concurrency=1)

    statuses = [s for _, _, s in assembly_service.run_pending(db=db, rewriter=config)]

    assert statuses == ["ready"] * 3
    assert len(fake.requests) == 2  # 6 rewritable blocks; before the breaker every one waited its timeout
    errors = [
        [
            g["error"]
            for g in client.get(f"/v1/artifacts/{a['id']}", headers=secret_headers).json()["provenance"][
                "guard"
            ]
        ]
        for a in arts
    ]
    assert errors == [
        ["timeout", "timeout"],
        ["circuit_open", "circuit_open"],
        ["circuit_open", "circuit_open"],
    ]
    assert all(ORIGINAL in markdown_of(client, secret_headers, a["id"]) for a in arts)


# -- item 7a: the buyer's consent to AI-rewritten content ---------------------------------------------


def test_originals_only_sends_nothing_to_the_rewriter(client, write_headers, secret_headers, db, harness):
    setup(client, secret_headers)
    fake = harness.serve(echo(("Show the full value", "Show the whole value")))
    art = make(client, write_headers, secret_headers, "c1")
    buyer_id = art["buyer_id"]
    r = client.put(
        f"/v1/buyers/{buyer_id}/consent", headers=secret_headers, json={"ai_rewrite": "originals_only"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["consent"] == {"marketing": None, "personalization": None, "ai_rewrite": "originals_only"}

    assert [s for _, _, s in assembly_service.run_pending(db=db, rewriter=rewriter(fake))] == ["ready"]

    assert fake.requests == []
    prov = client.get(f"/v1/artifacts/{art['id']}", headers=secret_headers).json()["provenance"]
    assert (prov["ai_rewrite_consent"], prov["guard"], prov["rewriter"]) == ("originals_only", [], None)
    text = markdown_of(client, secret_headers, art["id"])
    assert ORIGINAL in text and "AI-assisted" not in text


def test_reviewed_only_sends_rewritten_versions_to_review(client, write_headers, secret_headers, db, harness):
    setup(client, secret_headers)  # the policy itself never asks for review
    fake = harness.serve(echo(("Show the full value", "Show the whole value")))
    # set through ingestion: an identify trait
    art = make(client, write_headers, secret_headers, "c2", traits={"consent_ai_rewrite": "reviewed-only"})

    assert [s for _, _, s in assembly_service.run_pending(db=db, rewriter=rewriter(fake))] == [
        "awaiting_review"
    ]

    got = client.get(f"/v1/artifacts/{art['id']}", headers=secret_headers).json()
    assert got["review"]["reason"] == "the buyer accepts AI-rewritten content only after human review"
    assert got["provenance"]["ai_rewrite_consent"] == "reviewed_only"
    r = client.post(
        f"/v1/artifacts/{art['id']}/review",
        headers=secret_headers,
        json={"action": "approve", "reviewer": "ed"},
    )
    assert r.json()["status"] == "ready"
    assert "Show the whole value before the price." in markdown_of(client, secret_headers, art["id"])


def test_reviewed_only_without_a_rewrite_is_ready(client, write_headers, secret_headers, db):
    setup(client, secret_headers)
    art = make(client, write_headers, secret_headers, "c3", traits={"consent_ai_rewrite": "reviewed_only"})
    assert [s for _, _, s in assembly_service.run_pending(db=db, rewriter=None)] == ["ready"]
    assert client.get(f"/v1/artifacts/{art['id']}", headers=secret_headers).json()["status"] == "ready"


@pytest.mark.parametrize(
    "body", [{"ai_rewrite": "sometimes"}, {"ai_rewrite": 1}, {"ai_rewrite": ["allowed"]}]
)
def test_consent_refuses_unknown_values(client, write_headers, secret_headers, body):
    r = client.post("/v1/identify", headers=write_headers,
                    json=msg(userId="c4", messageId="c4-id", traits={"consent_ai_rewrite": "whenever"}))  # fmt: skip
    assert r.status_code == 200
    buyer = client.get("/v1/buyers/lookup", headers=secret_headers, params={"user_id": "c4"}).json()
    assert buyer["consent"]["ai_rewrite"] is None  # an unknown trait value is not a consent
    r = client.put(f"/v1/buyers/{buyer['id']}/consent", headers=secret_headers, json=body)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "validation_failed"


def test_ai_rewrite_consent_survives_a_merge_is_exported_and_erased(client, write_headers, secret_headers):
    send = lambda **m: client.post("/v1/identify", headers=write_headers, json=msg(**m))  # noqa: E731
    # an anonymous visitor opts for originals only; the identified buyer has not said anything yet
    assert (
        send(
            anonymousId="anon-1", messageId="m1", traits={"consent_ai_rewrite": "originals_only"}
        ).status_code
        == 200
    )
    assert (
        send(userId="merge-u", anonymousId="anon-2", messageId="m2", traits={"name": "Ana"}).status_code
        == 200
    )
    assert (
        send(userId="merge-u", anonymousId="anon-1", messageId="m3").status_code == 200
    )  # the two are one buyer
    buyer = client.get("/v1/buyers/lookup", headers=secret_headers, params={"user_id": "merge-u"}).json()
    assert buyer["consent"]["ai_rewrite"] == "originals_only"
    assert (
        client.get("/v1/buyers/lookup", headers=secret_headers, params={"anonymous_id": "anon-1"}).json()[
            "id"
        ]
        == buyer["id"]
    )

    export = client.get(f"/v1/buyers/{buyer['id']}/export", headers=secret_headers).json()
    assert export["buyer"]["consent"]["ai_rewrite"] == "originals_only"
    assert client.delete(f"/v1/buyers/{buyer['id']}", headers=secret_headers).status_code == 200
    assert (
        client.get(f"/v1/buyers/{buyer['id']}", headers=secret_headers).json()["consent"]["ai_rewrite"]
        is None
    )
