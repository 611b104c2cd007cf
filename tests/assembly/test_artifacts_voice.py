"""Voice rewriting inside the render job, against real HTTP servers on loopback that behave like a model:
faithful, hallucinating and hanging. The deliverable never fails; the guard keeps the original."""

from __future__ import annotations

from tests.assembly.test_artifacts_api import buyer, setup_workspace
from tests.assembly.test_voice import Harness, atom_of, completion, hallucinating, hangs

from offerloop.assembly import service as assembly_service
from offerloop.assembly.voice import RewriterConfig, prompt_hash

ORIGINAL = "Show the full value before the price."


def faithful(h, body):
    h.reply(200, completion(atom_of(body).replace("Show the full value", "Show the whole value")))


def make(client, db, write_headers, secret_headers, user: str):
    setup_workspace(client, secret_headers, review="guard_fired")
    buyer(client, write_headers, user, "Ana Lima", "idea", 1, "")
    return client.post(
        "/v1/artifacts", headers=secret_headers, json={"user_id": user, "policy": "starter-workbook"}
    ).json()


def markdown_of(client, secret_headers, artifact_id: str) -> str:
    link = client.get(
        f"/v1/artifacts/{artifact_id}/download", headers=secret_headers, params={"format": "markdown"}
    ).json()
    return client.get(link["url"]).text


def test_faithful_rewrite_is_used_and_labelled(client, db, write_headers, secret_headers):
    harness = Harness()
    try:
        fake = harness.serve(faithful)
        art = make(client, db, write_headers, secret_headers, "v1")
        config = RewriterConfig(base_url=fake.base_url, model="voice-test", timeout_s=5.0)
        assert [s for _, _, s in assembly_service.run_pending(db=db, rewriter=config)] == ["ready"]
    finally:
        harness.close()
    # only the atom that allows rewriting was sent (price-anchor has ai_rewrite: true)
    assert len(fake.requests) == 1 and ORIGINAL in atom_of(fake.requests[0].body)
    got = client.get(f"/v1/artifacts/{art['id']}", headers=secret_headers).json()
    prov = got["provenance"]
    assert prov["rewriter"] == {
        "model": "voice-test",
        "prompt_hash": prompt_hash(config),
        "endpoint": fake.base_url,
    }
    assert prov["guard"] == [{"atom_id": "price-anchor", "rewritten": True, "error": None,
                              "guard": {"ok": True, "reasons": [], "similarity": prov["guard"][0]["guard"]["similarity"]},
                              "rejected": [], "cached": False, "redacted": 0}]  # fmt: skip
    text = markdown_of(client, secret_headers, art["id"])
    assert "Show the whole value before the price." in text and ORIGINAL not in text
    assert "AI-assisted" in text


def test_hallucination_keeps_the_original_and_sends_it_to_review(client, db, write_headers, secret_headers):
    harness = Harness()
    try:
        fake = harness.serve(hallucinating)
        art = make(client, db, write_headers, secret_headers, "v2")
        config = RewriterConfig(base_url=fake.base_url, model="voice-test", timeout_s=5.0)
        assert [s for _, _, s in assembly_service.run_pending(db=db, rewriter=config)] == ["awaiting_review"]
    finally:
        harness.close()
    got = client.get(f"/v1/artifacts/{art['id']}", headers=secret_headers).json()
    assert got["review"]["reason"] == "the grounding guard rejected a rewrite"
    (entry,) = got["provenance"]["guard"]
    assert entry["rewritten"] is False and entry["error"] == "guard_rejected"
    assert "number:10000" in entry["guard"]["reasons"] and "domain:example.com" in entry["guard"]["reasons"]
    approve = client.post(
        f"/v1/artifacts/{art['id']}/review",
        headers=secret_headers,
        json={"action": "approve", "reviewer": "ed"},
    )
    assert approve.json()["status"] == "ready"
    text = markdown_of(client, secret_headers, art["id"])
    assert ORIGINAL in text and "AI-assisted" not in text and "example.com" not in text


def test_a_hanging_model_times_out_to_the_original_never_a_failed_artifact(
    client, db, write_headers, secret_headers
):
    harness = Harness()
    try:
        fake = harness.serve(hangs)
        art = make(client, db, write_headers, secret_headers, "v3")
        config = RewriterConfig(base_url=fake.base_url, model="voice-test", timeout_s=0.3)
        assert [s for _, _, s in assembly_service.run_pending(db=db, rewriter=config)] == ["ready"]
    finally:
        harness.close()
    got = client.get(f"/v1/artifacts/{art['id']}", headers=secret_headers).json()
    assert [g["error"] for g in got["provenance"]["guard"]] == ["timeout"]
    assert ORIGINAL in markdown_of(client, secret_headers, art["id"])
