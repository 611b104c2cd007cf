"""What reaches the rewriter about a buyer, over the HTTP API with a real loopback model server.

Buyer values are Markdown-escaped by the template (``Anne-Marie`` is ``Anne\\-Marie`` in the block's
text) before redaction, so redaction must match the escaped forms, and every e-mail address, URL and
domain that came from a buyer value. Answers to single-choice questions are option values the creator
wrote (``idea``), not buyer text: they stay in the atom, so its rewrite can be cached.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from tests.assembly.test_artifacts_api import ATOMS, POLICY, QUIZ
from tests.assembly.test_rewriter_api import PERSONAL_ATOMS
from tests.assembly.test_voice import Handler, Harness, atom_of, completion
from tests.conftest import msg

from offerloop.assembly import service as assembly_service
from offerloop.assembly.rewriter import redact
from offerloop.assembly.template import inert_markdown
from offerloop.assembly.voice import RewriterConfig

# the welcome atom carries the buyer's name and goal; the stage atom names the option "idea"
ATOMS_HERE = {
    **PERSONAL_ATOMS,
    "validate-idea": ATOMS["validate-idea"]
    .replace("minutes: 20\n", "minutes: 20\nai_rewrite: true\n")
    .replace(
        "Talk to five people who have the problem.",
        "Talk to five people about your idea before you build it.",
    ),
}
NAME = "Anne-Marie O'Neil"
GOAL = "Grow annemarie.co to 200 subscribers, then email anne.marie@oneil.example."
SECRETS = ("anne", "marie", "neil", "annemarie", "oneil", "200 subscribers")


@pytest.fixture
def harness() -> Iterator[Harness]:
    h = Harness()
    yield h
    h.close()


def setup(client, secret_headers) -> None:
    r = client.post("/v1/content/sync", headers=secret_headers,
                    json={"atoms": [{"text": t, "path": f"{k}.md"} for k, t in ATOMS_HERE.items()]})  # fmt: skip
    assert r.status_code == 200, r.text
    assert client.put("/v1/quizzes", headers=secret_headers, json={"text": QUIZ}).status_code == 200
    r = client.put("/v1/policies", headers=secret_headers, json={"text": POLICY.replace("{REVIEW}", "never")})
    assert r.status_code == 200, r.text


def make(client, write_headers, secret_headers, user: str, name: str, goal: str) -> dict[str, Any]:
    r = client.post("/v1/identify", headers=write_headers,
                    json=msg(userId=user, messageId=f"{user}-id", traits={"name": name}))  # fmt: skip
    assert r.status_code == 200, r.text
    r = client.post("/v1/quizzes/intake/answers", headers=write_headers,
                    json={"user_id": user, "answers": {"stage": "idea", "confidence": 1, "goal": goal}})  # fmt: skip
    assert r.status_code == 200, r.text
    r = client.post(
        "/v1/artifacts", headers=secret_headers, json={"user_id": user, "policy": "starter-workbook"}
    )
    assert r.status_code == 202, r.text
    return r.json()


def echo(h: Handler, body: dict[str, Any]) -> None:
    h.reply(
        200,
        completion(atom_of(body).replace("Talk to", "Speak with").replace("this workbook", "the workbook")),
    )


def guard_of(client, secret_headers, artifact_id: str) -> dict[str, dict[str, Any]]:
    got = client.get(f"/v1/artifacts/{artifact_id}", headers=secret_headers).json()
    return {g["atom_id"]: g for g in got["provenance"]["guard"]}


def test_punctuated_names_goals_emails_and_domains_never_reach_the_model(
    client, write_headers, secret_headers, db, harness
):
    setup(client, secret_headers)
    fake = harness.serve(echo)
    art = make(client, write_headers, secret_headers, "p1", NAME, GOAL)
    config = RewriterConfig(base_url=fake.base_url, model="voice-test", timeout_s=5.0)

    assert [s for _, _, s in assembly_service.run_pending(db=db, rewriter=config)] == ["ready"]

    sent = [json.dumps(r.body, ensure_ascii=False).lower() for r in fake.requests]
    assert len(sent) == 3
    leaked = sorted({s for body in sent for s in SECRETS if s in body})
    assert leaked == []
    welcome = next(atom_of(r.body) for r in fake.requests if "Hi " in atom_of(r.body))
    assert welcome == "Hi {{ buyer_2 }}, this workbook follows your answers: your goal is {{ buyer_1 }}."
    guard = guard_of(client, secret_headers, art["id"])
    assert (guard["welcome"]["redacted"], guard["welcome"]["rewritten"]) == (2, True)
    link = client.get(
        f"/v1/artifacts/{art['id']}/download", headers=secret_headers, params={"format": "markdown"}
    )
    text = client.get(link.json()["url"]).text
    # restored exactly as the template escaped it, so the document reads the buyer's own words
    assert (
        "Hi Anne\\-Marie, the workbook follows your answers: your goal is Grow annemarie\\.co to 200 "
        "subscribers\\, then email anne\\.marie\\@oneil\\.example\\.." in text
    )


def test_an_email_or_domain_of_a_goal_is_redacted_where_it_appears_on_its_own() -> None:
    """Values are redacted whole and also by the addresses inside them: a block quoting only part of
    the goal (a block that names only the buyer's domain or address) still keeps it from the model."""
    hidden = redact(
        f"Link {inert_markdown('annemarie.co')} and write to {inert_markdown('anne.marie@oneil.example')} today.",
        [GOAL],
    )
    assert hidden.text == "Link {{ buyer_2 }} and write to {{ buyer_1 }} today."
    assert hidden.values == ("anne\\.marie\\@oneil\\.example", "annemarie\\.co")


def test_single_choice_answers_are_not_buyer_identifiers(client, write_headers, secret_headers, db, harness):
    setup(client, secret_headers)
    fake = harness.serve(echo)
    first = make(client, write_headers, secret_headers, "s1", "Ana Lima", "sell my pottery course")
    config = RewriterConfig(base_url=fake.base_url, model="voice-test", timeout_s=5.0)
    assert [s for _, _, s in assembly_service.run_pending(db=db, rewriter=config)] == ["ready"]

    idea = [atom_of(r.body) for r in fake.requests if "Talk to" in atom_of(r.body)]
    assert idea == [
        "Talk to five people about your idea before you build it. Ask what they tried and what it cost them."
    ]
    assert guard_of(client, secret_headers, first["id"])["validate-idea"]["redacted"] == 0

    # a second buyer with the same option gets the cached rewrite: no new call for that block
    calls = len(fake.requests)
    second = make(client, write_headers, secret_headers, "s2", "Bo Chen", "teach watercolour")
    assert [s for _, _, s in assembly_service.run_pending(db=db, rewriter=config)] == ["ready"]
    assert not any("Talk to" in atom_of(r.body) for r in fake.requests[calls:])
    entry = guard_of(client, secret_headers, second["id"])["validate-idea"]
    assert (entry["cached"], entry["rewritten"]) == (True, True)


# -- the buyer's AI-rewrite consent as an identify trait (issue 9, item 7) -------------------------


@pytest.mark.parametrize(
    ("value", "consent"),
    [
        (False, "originals_only"),
        ("no", "originals_only"),
        ("off", "originals_only"),
        ("0", "originals_only"),
        ("none", "originals_only"),
        ("false", "originals_only"),
        (0, "originals_only"),
        (True, "allowed"),
        ("yes", "allowed"),
        ("originals-only", "originals_only"),
    ],
)
def test_a_yes_no_consent_trait_is_a_consent(
    client, write_headers, secret_headers, db, harness, value, consent
):
    setup(client, secret_headers)
    fake = harness.serve(echo)
    art = make_with(client, write_headers, secret_headers, "k1", {"consent_ai_rewrite": value})
    buyer = client.get("/v1/buyers/lookup", headers=secret_headers, params={"user_id": "k1"}).json()
    assert buyer["consent"]["ai_rewrite"] == consent
    config = RewriterConfig(base_url=fake.base_url, model="voice-test", timeout_s=5.0)

    assert [s for _, _, s in assembly_service.run_pending(db=db, rewriter=config)] == ["ready"]

    prov = client.get(f"/v1/artifacts/{art['id']}", headers=secret_headers).json()["provenance"]
    assert prov["ai_rewrite_consent"] == consent
    assert (len(fake.requests) > 0) is (consent == "allowed")


def test_an_unknown_consent_trait_is_logged_and_changes_nothing(
    client, write_headers, secret_headers, caplog
):
    r = client.post("/v1/identify", headers=write_headers,
                    json=msg(userId="k2", messageId="k2-a", traits={"consent_ai_rewrite": "originals_only"}))  # fmt: skip
    assert r.status_code == 200
    with caplog.at_level("WARNING", logger="offerloop.identity.resolver"):
        r = client.post("/v1/identify", headers=write_headers,
                        json=msg(userId="k2", messageId="k2-b", traits={"consent_ai_rewrite": "whenever"}))  # fmt: skip
    assert r.status_code == 200
    buyer = client.get("/v1/buyers/lookup", headers=secret_headers, params={"user_id": "k2"}).json()
    assert buyer["consent"]["ai_rewrite"] == "originals_only"  # the earlier statement stands
    assert [rec.getMessage() for rec in caplog.records if rec.name == "offerloop.identity.resolver"] == [
        "ignored consent_ai_rewrite value 'whenever': not one of allowed, originals_only, reviewed_only or a yes/no"
    ]


def make_with(client, write_headers, secret_headers, user: str, traits: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/v1/identify", headers=write_headers,
                    json=msg(userId=user, messageId=f"{user}-id", traits={"name": "Ana Lima", **traits}))  # fmt: skip
    assert r.status_code == 200, r.text
    r = client.post(
        "/v1/artifacts", headers=secret_headers, json={"user_id": user, "policy": "starter-workbook"}
    )
    assert r.status_code == 202, r.text
    return r.json()
