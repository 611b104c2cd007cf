"""A human review decision stands (issue 9 item 1) and reviewers see what they approve (item 5), over HTTP."""

from __future__ import annotations

import pytest
from tests.assembly.test_artifacts_api import ATOMS, POLICY, buyer, setup_workspace
from tests.conftest import bearer

from offerloop.assembly import service as assembly_service


def _create(client, headers, user_id: str, **extra) -> str:
    r = client.post(
        "/v1/artifacts", headers=headers, json={"user_id": user_id, "policy": "starter-workbook", **extra}
    )
    assert r.status_code == 202, r.text
    return r.json()["id"]


def _review(client, headers, art: str, action: str, **body):
    return client.post(
        f"/v1/artifacts/{art}/review",
        headers=headers,
        json={"action": action, "reviewer": "rita@creator", **body},
    )


def _change_atom(client, headers, atom: str, old: str, new: str) -> None:
    r = client.put("/v1/content/atoms", headers=headers, json={"text": ATOMS[atom].replace(old, new)})
    assert r.status_code == 200, r.text


def _regenerate(client, headers, atom: str) -> list[dict]:
    r = client.post("/v1/artifacts/regenerate", headers=headers, params={"atom_id": atom})
    assert r.status_code == 202, r.text
    return r.json()["regenerated"]


def _markdown(client, headers, art: str) -> tuple[int, str]:
    link = client.get(f"/v1/artifacts/{art}/download", headers=headers, params={"format": "markdown"})
    assert link.status_code == 200, link.text
    return link.json()["version"], client.get(link.json()["url"]).text


def test_a_rejected_artifact_regenerated_after_an_atom_change_goes_back_to_review(
    client, db, write_headers, secret_headers
):
    setup_workspace(client, secret_headers, review="always")
    buyer(client, write_headers, "ana", "Ana Lima", "idea", 1, "")
    art = _create(client, secret_headers, "ana")
    assembly_service.run_pending(db=db)
    assert (
        _review(client, secret_headers, art, "reject", note="the pricing lesson is wrong").json()["status"]
        == "rejected"
    )
    # the creator stops requiring review for new deliverables and fixes the atom: the rejection still stands
    assert (
        client.put(
            "/v1/policies", headers=secret_headers, json={"text": POLICY.replace("{REVIEW}", "never")}
        ).status_code
        == 200
    )
    _change_atom(client, secret_headers, "price-anchor", "Buyers compare", "People compare")
    assert _regenerate(client, secret_headers, "price-anchor") == [{"id": art, "version": 2}]
    assert assembly_service.run_pending(db=db) == [(art, 2, "awaiting_review")]

    got = client.get(f"/v1/artifacts/{art}", headers=secret_headers).json()
    assert (got["version"], got["status"], got["downloadable_version"]) == (2, "awaiting_review", None)
    assert got["review"]["reasons"] == ["regenerated after review: v1 was rejected"]
    refused = client.get(f"/v1/artifacts/{art}/download", headers=secret_headers)
    assert refused.status_code == 409 and refused.json()["error"]["details"] == {"status": "awaiting_review"}

    queue = client.get("/v1/reviews", headers=secret_headers).json()["items"]
    assert [(q["artifact_id"], q["version"], q["regenerated_after_review"]) for q in queue] == [(art, 2, 1)]
    diff = queue[0]["diff"]
    assert (diff["against_version"], diff["against_outcome"], diff["against_reviewer"]) == (
        1,
        "rejected",
        "rita@creator",
    )
    assert [(a["id"], a["change"]) for a in diff["atoms"]] == [("price-anchor", "changed")]
    [block] = diff["blocks"]
    assert (block["block"], block["atom_id"], block["change"]) == ("pricing/0", "price-anchor", "changed")
    assert "-Show the full value before the price. Buyers compare" in block["text_diff"]
    assert "+Show the full value before the price. People compare" in block["text_diff"]

    assert _review(client, secret_headers, art, "approve").json() == {
        "id": art,
        "version": 2,
        "status": "ready",
    }
    version, text = _markdown(client, secret_headers, art)
    assert version == 2 and "People compare" in text


def test_a_reviewers_edit_is_carried_onto_the_regenerated_version(client, db, write_headers, secret_headers):
    setup_workspace(client, secret_headers, review="always")
    buyer(client, write_headers, "ben", "Ben Ode", "idea", 1, "")
    art = _create(client, secret_headers, "ben")
    assembly_service.run_pending(db=db)
    edit = "Show the value first, then the price: $49 after $400 of outcomes."
    assert (
        _review(client, secret_headers, art, "edit", edits={"pricing/0": edit}).json()["status"] == "queued"
    )
    assert assembly_service.run_pending(db=db) == [(art, 1, "ready")]

    _change_atom(client, secret_headers, "price-anchor", "Buyers compare", "People compare")
    _change_atom(client, secret_headers, "validate-idea", "five people", "six people")
    assert _regenerate(client, secret_headers, "price-anchor") == [{"id": art, "version": 2}]
    assert assembly_service.run_pending(db=db) == [(art, 2, "awaiting_review")]
    # until a human approves v2, the buyer keeps the edited and approved v1
    version, text = _markdown(client, secret_headers, art)
    assert version == 1 and edit in text and "People compare" not in text

    detail = client.get(f"/v1/reviews/{art}", headers=secret_headers).json()
    assert detail["version"] == 2 and detail["status"] == "awaiting_review"
    blocks = {b["block"]: b for s in detail["document"]["sections"] for b in s["blocks"]}
    assert blocks["pricing/0"]["markdown"] == edit and blocks["pricing/0"]["atom_id"] == "price-anchor"
    assert "six people" in blocks["path/0"]["markdown"]
    [kept] = detail["edits"]["in_effect"]
    assert (kept["block"], kept["text"], kept["kept"], kept["atom_changed"]) == (
        "pricing/0",
        edit,
        True,
        True,
    )
    assert "Buyers compare" in kept["original"] and "People compare" in kept["replaces"]
    assert detail["edits"]["not_carried"] == []
    assert {b["block"]: b["change"] for b in detail["diff"]["blocks"]} == {"path/0": "changed"}
    assert sorted(a["id"] for a in detail["diff"]["atoms"]) == ["price-anchor", "validate-idea"]
    assert "reviewer edit kept on pricing/0" in detail["changelog"]

    assert _review(client, secret_headers, art, "approve", version=2).json()["status"] == "ready"
    version, text = _markdown(client, secret_headers, art)
    assert version == 2 and edit in text and "six people" in text and "People compare" not in text


def test_an_edit_whose_block_is_gone_is_flagged_for_the_reviewer(client, db, write_headers, secret_headers):
    setup_workspace(client, secret_headers, review="always")
    buyer(client, write_headers, "cy", "Cy Park", "idea", 1, "")
    art = _create(client, secret_headers, "cy")
    assembly_service.run_pending(db=db)
    _review(client, secret_headers, art, "edit", edits={"pricing/0": "My own pricing advice."})
    assembly_service.run_pending(db=db)
    # the buyer is now confident about pricing: the pricing section (and the edited block) leaves the workbook
    r = client.post("/v1/quizzes/intake/answers", headers=write_headers,
                    json={"user_id": "cy", "answers": {"stage": "idea", "confidence": 5}})  # fmt: skip
    assert r.status_code == 200, r.text
    _change_atom(client, secret_headers, "validate-idea", "five people", "six people")
    _regenerate(client, secret_headers, "validate-idea")
    assert assembly_service.run_pending(db=db) == [(art, 2, "awaiting_review")]

    [row] = client.get("/v1/reviews", headers=secret_headers).json()["items"]
    assert row["reasons"] == ["regenerated after review: v1 was edited",
                              "1 reviewer edit(s) could not be carried onto this version", "policy requires review"]  # fmt: skip
    [flagged] = row["edits"]["not_carried"]
    assert (flagged["block"], flagged["text"], flagged["atom_id"]) == (
        "pricing/0",
        "My own pricing advice.",
        "price-anchor",
    )
    assert row["edits"]["in_effect"] == []
    assert {b["was_block"]: b["change"] for b in row["diff"]["blocks"]} == {
        "path/0": "changed",
        "pricing/0": "removed",
    }
    assert client.get(f"/v1/artifacts/{art}/download", headers=secret_headers).json()["version"] == 1


def test_regenerating_again_before_review_keeps_the_flags_and_supersedes_the_unreviewed_version(
    client, db, write_headers, secret_headers
):
    setup_workspace(client, secret_headers, review="always")
    buyer(client, write_headers, "dee", "Dee", "idea", 1, "")
    art = _create(client, secret_headers, "dee")
    assembly_service.run_pending(db=db)
    _review(client, secret_headers, art, "reject")
    _change_atom(client, secret_headers, "price-anchor", "Buyers compare", "People compare")
    _regenerate(client, secret_headers, "price-anchor")
    assembly_service.run_pending(db=db)
    _change_atom(client, secret_headers, "validate-idea", "five people", "six people")
    assert _regenerate(client, secret_headers, "validate-idea") == [{"id": art, "version": 3}]
    assert assembly_service.run_pending(db=db) == [(art, 3, "awaiting_review")]
    got = client.get(f"/v1/artifacts/{art}", headers=secret_headers).json()
    assert [(v["version"], v["status"], v["review_outcome"]) for v in got["versions"]] == [
        (1, "rejected", "rejected"), (2, "superseded", None), (3, "awaiting_review", None)]  # fmt: skip
    assert [q["version"] for q in client.get("/v1/reviews", headers=secret_headers).json()["items"]] == [3]
    # a reviewer who saw v2 cannot approve v3 by accident
    stale = _review(client, secret_headers, art, "approve", version=2)
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "stale_version"
    assert client.get(f"/v1/artifacts/{art}/download", headers=secret_headers).status_code == 409
    # an earlier version stays readable for the reviewer, with its outcome; a version that never existed is a 404
    v1 = client.get(f"/v1/reviews/{art}", headers=secret_headers, params={"version": 1}).json()
    assert (v1["version"], v1["status"], v1["diff"]) == (1, "rejected", None)
    assert client.get(f"/v1/reviews/{art}", headers=secret_headers, params={"version": 9}).status_code == 404
    assert client.get(f"/v1/reviews/{art}", headers=secret_headers, params={"version": 0}).status_code == 422


def test_the_reviewer_sees_the_whole_document_buyer_policy_and_reasons(
    client, db, write_headers, secret_headers
):
    setup_workspace(client, secret_headers, review="always")
    buyer(client, write_headers, "eve", "Eve Stone", "idea", 1, "sell a template")
    art = _create(client, secret_headers, "eve")
    assembly_service.run_pending(db=db)
    [row] = client.get("/v1/reviews", headers=secret_headers).json()["items"]
    assert row["buyer"]["user_id"] == "eve" and row["buyer"]["name"] == "Eve Stone"
    assert {"kind": "user_id", "value": "eve"} in row["buyer"]["identifiers"]
    assert row["policy"]["id"] == "starter-workbook" and len(row["policy"]["version"]) == 16
    assert row["reasons"] == ["policy requires review"] and row["diff"] is None

    detail = client.get(f"/v1/reviews/{art}", headers=secret_headers).json()
    blocks = [b for s in detail["document"]["sections"] for b in s["blocks"]]
    assert [(b["block"], b["atom_id"]) for b in blocks] == [
        ("start/0", "welcome"), ("path/0", "validate-idea"), ("pricing/0", "price-anchor")]  # fmt: skip
    assert all(len(b["atom_version"]) == 16 for b in blocks)
    assert "Talk to five people who have the problem." in blocks[1]["markdown"]
    assert "Talk to five people who have the problem." in detail["html"]
    assert [a["id"] for a in detail["provenance"]["atoms"]] == ["welcome", "validate-idea", "price-anchor"]
    # the reviewer's preview link works while the buyer's download is refused
    preview = client.get(detail["preview_url"])
    assert preview.status_code == 200 and "Validate the idea first" in preview.text
    assert client.get(f"/v1/artifacts/{art}/download", headers=secret_headers).status_code == 409
    # a preview link is not a download link, and a tampered one is refused
    assert client.get(detail["preview_url"].replace("/v1/reviews/", "/v1/files/")).status_code == 403
    assert client.get(detail["preview_url"].replace("sig=", "sig=0")).status_code == 403


def test_another_workspace_cannot_see_or_review_it(
    client, db, write_headers, secret_headers, other_workspace
):
    setup_workspace(client, secret_headers, review="always")
    buyer(client, write_headers, "fay", "Fay", "idea", 1, "")
    art = _create(client, secret_headers, "fay")
    assembly_service.run_pending(db=db)
    other = bearer(other_workspace.secret_key)
    assert client.get("/v1/reviews", headers=other).json()["items"] == []
    for r in (client.get(f"/v1/reviews/{art}", headers=other), _review(client, other, art, "approve")):
        assert r.status_code == 404 and r.json()["error"]["code"] == "artifact_not_found"
    assert client.get(f"/v1/artifacts/{art}", headers=secret_headers).json()["status"] == "awaiting_review"


@pytest.mark.parametrize(
    "body",
    [
        {"action": "approve"},
        {"action": "publish", "reviewer": "x"},
        {"action": "approve", "reviewer": "   "},
        {"action": "edit", "reviewer": "x", "edits": {"path/0": 5}},
        {"action": "edit", "reviewer": "x", "edits": ["path/0"]},
        {"action": "approve", "reviewer": "x", "version": 0},
        {"action": "approve", "reviewer": "x", "version": "two"},
        {"action": "approve", "reviewer": "x" * 201},
        [],
        "approve",
    ],
)
def test_garbage_review_bodies_are_422(client, db, write_headers, secret_headers, body):
    setup_workspace(client, secret_headers, review="always")
    buyer(client, write_headers, "gus", "Gus", "idea", 1, "")
    art = _create(client, secret_headers, "gus")
    assembly_service.run_pending(db=db)
    r = client.post(f"/v1/artifacts/{art}/review", headers=secret_headers, json=body)
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_failed"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"action": "edit", "reviewer": "x", "edits": {"nowhere/9": "x"}}, "invalid_edits"),
        ({"action": "edit", "reviewer": "x", "edits": {}}, "invalid_edits"),
        ({"action": "approve", "reviewer": "x", "edits": {"path/0": "x"}}, "invalid_edits"),
    ],
)
def test_bad_edits_are_clear_errors_and_change_nothing(client, db, write_headers, secret_headers, body, code):
    setup_workspace(client, secret_headers, review="always")
    buyer(client, write_headers, "hal", "Hal", "idea", 1, "")
    art = _create(client, secret_headers, "hal")
    assembly_service.run_pending(db=db)
    r = client.post(f"/v1/artifacts/{art}/review", headers=secret_headers, json=body)
    assert r.status_code == 409 and r.json()["error"]["code"] == code
    assert client.get(f"/v1/artifacts/{art}", headers=secret_headers).json()["status"] == "awaiting_review"


def test_the_issue_case_a_guard_review_then_a_clean_rewrite_does_not_skip_the_human(
    client, db, write_headers, secret_headers
):
    """Issue 9 item 1 as reported: review only when the guard fires; v1's rewrite was refused by the guard and
    a reviewer rejected it; after an atom change v2's rewrite passes the guard — on main it shipped as ready."""
    from tests.assembly.test_artifacts_voice import faithful
    from tests.assembly.test_voice import Harness, hallucinating

    from offerloop.assembly.voice import RewriterConfig

    setup_workspace(client, secret_headers, review="guard_fired")
    buyer(client, write_headers, "ivy", "Ivy", "idea", 1, "")
    art = _create(client, secret_headers, "ivy")
    harness = Harness()
    try:
        bad = RewriterConfig(
            base_url=harness.serve(hallucinating).base_url, model="voice-test", timeout_s=5.0
        )
        assert assembly_service.run_pending(db=db, rewriter=bad) == [(art, 1, "awaiting_review")]
        assert (
            _review(client, secret_headers, art, "reject", note="invented numbers").json()["status"]
            == "rejected"
        )
        _change_atom(client, secret_headers, "price-anchor", "Buyers compare", "People compare")
        _regenerate(client, secret_headers, "price-anchor")
        good = RewriterConfig(base_url=harness.serve(faithful).base_url, model="voice-test", timeout_s=5.0)
        assert assembly_service.run_pending(db=db, rewriter=good) == [(art, 2, "awaiting_review")]
    finally:
        harness.close()
    got = client.get(f"/v1/artifacts/{art}", headers=secret_headers).json()
    assert got["review"]["reasons"] == ["regenerated after review: v1 was rejected"]
    assert got["provenance"]["guard"][0]["rewritten"] is True  # the guard passed: only the hold stops it
    assert client.get(f"/v1/artifacts/{art}/download", headers=secret_headers).status_code == 409


def test_a_carried_edit_is_never_rewritten_by_the_voice_rewriter(client, db, write_headers, secret_headers):
    """A reviewer's edit carried onto a regenerated version is the reviewer's text: the rewriter never sees it
    (the block's atom allows AI rewriting, and the model would reword the edit)."""
    from tests.assembly.test_artifacts_voice import faithful
    from tests.assembly.test_voice import Harness

    from offerloop.assembly.voice import RewriterConfig

    setup_workspace(client, secret_headers, review="always")
    buyer(client, write_headers, "jo", "Jo", "idea", 1, "")
    art = _create(client, secret_headers, "jo")
    assembly_service.run_pending(db=db)
    edit = "Show the full value first, then the price: $49 after $400 of outcomes."
    assert (
        _review(client, secret_headers, art, "edit", edits={"pricing/0": edit}).json()["status"] == "queued"
    )
    assert assembly_service.run_pending(db=db) == [(art, 1, "ready")]
    _change_atom(client, secret_headers, "price-anchor", "Buyers compare", "People compare")
    assert _regenerate(client, secret_headers, "price-anchor") == [{"id": art, "version": 2}]
    harness = Harness()
    try:
        rewriter = RewriterConfig(
            base_url=harness.serve(faithful).base_url, model="voice-test", timeout_s=5.0
        )
        assert assembly_service.run_pending(db=db, rewriter=rewriter) == [(art, 2, "awaiting_review")]
    finally:
        harness.close()
    detail = client.get(f"/v1/reviews/{art}", headers=secret_headers).json()
    blocks = {b["block"]: b for s in detail["document"]["sections"] for b in s["blocks"]}
    assert blocks["pricing/0"]["markdown"] == edit
    [kept] = detail["edits"]["in_effect"]
    assert (kept["block"], kept["kept"]) == ("pricing/0", True)
    assert all(g["atom_id"] != "price-anchor" for g in detail.get("provenance", {}).get("guard", []))


@pytest.mark.parametrize("action", ["reject", "edit", "approve"])
def test_a_new_deliverable_after_a_rejection_or_edit_waits_for_a_human(
    client, db, write_headers, secret_headers, action
):
    """The same buyer's next deliverable of the same policy (a trigger firing again, a new request) is not a way
    around a reviewer: after a rejection or an edit it waits for a human, the edit carried; an approval does not."""
    setup_workspace(client, secret_headers, review="always")
    buyer(client, write_headers, "kim", "Kim", "idea", 1, "")
    first = _create(client, secret_headers, "kim")
    assembly_service.run_pending(db=db)
    edit = "Show the value first, then the price."
    body = {"edits": {"pricing/0": edit}} if action == "edit" else {}
    assert _review(client, secret_headers, first, action, **body).status_code == 200
    assembly_service.run_pending(db=db)
    r = client.put("/v1/policies", headers=secret_headers, json={"text": POLICY.replace("{REVIEW}", "never")})
    assert r.status_code == 200, r.text

    second = _create(client, secret_headers, "kim")
    assert assembly_service.run_pending(db=db) == [
        (second, 1, "ready" if action == "approve" else "awaiting_review")
    ]
    got = client.get(f"/v1/artifacts/{second}", headers=secret_headers).json()
    download = client.get(f"/v1/artifacts/{second}/download", headers=secret_headers)
    if action == "approve":
        assert download.status_code == 200 and got["review"]["reasons"] == []
        return
    assert download.status_code == 409
    past = {"reject": "rejected", "edit": "edited"}[action]
    assert got["review"]["reasons"] == [
        f"an earlier deliverable of this policy for this buyer ({first} v1) was {past} by a reviewer"
    ]
    detail = client.get(f"/v1/reviews/{second}", headers=secret_headers).json()
    blocks = {b["block"]: b["markdown"] for s in detail["document"]["sections"] for b in s["blocks"]}
    assert (blocks["pricing/0"] == edit) is (action == "edit")
