"""The audit report shows the buyer's own scores (issue 9, item 8): their quiz scores with the range the
quiz allows and a tier, and why each section and piece is there, in the report and in its provenance."""

from __future__ import annotations

import io

import pypdf
from tests.assembly.test_render_email import demo_buyer, download, load_demo, make_artifact

from offerloop.content.quizzes import parse_quiz

ANSWERS = {"stage": "building", "pricing_confidence": 2, "goal": "charge more for my course"}


def test_audit_report_shows_scores_tiers_and_reasons(client, db, write_headers, secret_headers) -> None:
    load_demo(client, secret_headers)
    demo_buyer(client, write_headers, "maya", "Maya Chen", ANSWERS)
    artifact_id = make_artifact(client, db, secret_headers, "maya", "pricing-audit")
    audit = client.get(f"/v1/artifacts/{artifact_id}", headers=secret_headers).json()["provenance"]["audit"]
    assert audit["scores"] == [
        {"dimension": "pricing_confidence", "score": 2.0, "min": 1.0, "max": 5.0, "tier": "low"},
        {"dimension": "readiness", "score": 2.0, "min": 1.0, "max": 4.0, "tier": "medium"},
    ]
    sections = {s["section"]: s for s in audit["sections"]}
    assert list(sections) == ["where-you-stand", "fixes", "words", "next-step"]
    assert all(s["included"] and s["reason"] == "included for every buyer" for s in sections.values())
    fixes = sections["fixes"]
    assert [p["atom"] for p in fixes["pieces"]] == ["pricing-first-price", "pricing-value-not-hours"]
    assert {p["condition"] for p in fixes["pieces"]} == {"included because pricing confidence ≤ 2"}
    assert fixes["pieces"][0]["reason"].startswith("rank 1; bm25 ")  # the selector's own reason, kept
    assert fixes["pieces"][0]["why"] == "matches your answers on course, charge, product; covers anchoring"
    assert fixes["left_out"] == [
        {"slot": "Structure", "reason": "left out because this was not the case: pricing confidence ≥ 3"}
    ]
    assert sections["where-you-stand"]["left_out"] == [{
        "slot": "Discount audit",
        "reason": "left out because this was not the case: (persona in [deal seeker] or readiness ≥ 3)",
    }]  # fmt: skip

    # the buyer sees it: first section of the report, in every format
    md = download(client, secret_headers, artifact_id, "markdown").text
    assert md.index("## Your scores and how this report was chosen") < md.index(
        "## Where your pricing stands"
    )
    assert "| Pricing confidence | 2 | 1 to 5 | low |" in md and "| Readiness | 2 | 1 to 4 | medium |" in md
    assert "Set your first price in one sitting: included because pricing confidence ≤ 2; matches" in md
    html = download(client, secret_headers, artifact_id, "html").text
    assert "<td>Pricing confidence</td>" in html and "<td>low</td>" in html
    pdf = download(client, secret_headers, artifact_id, "pdf").content
    pages = [p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf)).pages]
    scores_page = next(t for t in pages[2:] if "Your scores and how this report was chosen" in t)
    for text in ("Pricing confidence", "1 to 5", "low", "Readiness", "1 to 4", "medium"):
        assert text in scores_page, text


def test_a_workbook_keeps_its_sections_but_its_provenance_has_the_audit(
    client, db, write_headers, secret_headers
) -> None:
    load_demo(client, secret_headers)
    demo_buyer(client, write_headers, "maya", "Maya Chen", ANSWERS)
    artifact_id = make_artifact(client, db, secret_headers, "maya", "launch-workbook")
    got = client.get(f"/v1/artifacts/{artifact_id}", headers=secret_headers).json()
    assert [s["tier"] for s in got["provenance"]["audit"]["scores"]] == ["low", "medium"]
    assert "Your scores" not in download(client, secret_headers, artifact_id, "markdown").text


QUIZ = """
id: q
title: Q
questions:
  - {id: a, prompt: A, type: single, required: true, options: [{value: x, label: X, scores: {d: 1}}, {value: y, label: Y, scores: {d: 4}}]}
  - {id: b, prompt: B, type: single, required: false, options: [{value: x, label: X, scores: {d: 2, e: -1}}, {value: y, label: Y}]}
  - {id: c, prompt: C, type: multiple, required: false, options: [{value: x, label: X, scores: {e: 3}}, {value: y, label: Y, scores: {e: 2}}]}
  - {id: s, prompt: S, type: scale, required: false, min: 1, max: 5, score: d}
"""


def test_score_ranges_and_tiers() -> None:
    from offerloop.assembly.render.audit import score_ranges, tier  # new in this change

    quiz = parse_quiz(QUIZ, path="q.yaml")
    # d: a gives 1..4, b (optional) 0..2, s (optional scale) 0..5; e: b -1..0, c any subset 0..5
    assert score_ranges(quiz) == {"d": (1.0, 11.0), "e": (-1.0, 5.0)}
    assert [tier(x, 1.0, 11.0) for x in (1, 4, 4.34, 7.67, 11)] == ["low", "low", "medium", "high", "high"]
    assert tier(3, 3, 3) == "high"


def test_the_audit_never_fails_on_odd_or_old_provenance() -> None:
    from hypothesis import given
    from hypothesis import strategies as st

    from offerloop.assembly.document import Block, Document, Section
    from offerloop.assembly.render.audit import audit_view, with_audit
    from offerloop.assembly.render.markdown import render_markdown

    scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20))
    entry = st.fixed_dictionaries(
        {},
        optional={
            "section": scalar, "slot": scalar, "status": st.sampled_from(["rendered", "skipped", "selected", "fallback", "empty", "x"]),
            "reason": scalar, "location": scalar, "fallback": scalar,
            "atoms": st.lists(st.fixed_dictionaries({}, optional={"id": scalar, "reason": scalar}), max_size=3),
        },
    )  # fmt: skip
    provenance = st.fixed_dictionaries(
        {},
        optional={
            "inputs": st.fixed_dictionaries({}, optional={"scores": st.dictionaries(st.text(max_size=10), scalar, max_size=4),
                                                          "persona": scalar}),
            "provenance": st.lists(entry, max_size=6),
        },
    )  # fmt: skip
    doc = Document(
        title="T", sections=(Section("s", "S", (Block(markdown="x"),)),), deliverable="audit_report"
    )

    @given(provenance)
    def check(prov: dict) -> None:
        view = audit_view(prov, doc)
        assert all(
            isinstance(r["score"], int | float) and abs(r["score"]) < float("inf") for r in view["scores"]
        )
        render_markdown(with_audit(doc, view))

    check()
