"""Composition: exact documents for hand-built buyers, fallbacks, no duplicates, provenance, determinism."""

from __future__ import annotations

import json
import random
from dataclasses import replace

import pytest
from tests.assembly.test_selector import ADA, CORPUS, INDEX, NEWCOMER, QUIZ, SELLER, buyer

from offerloop.assembly.composer import ChosenAtom, Composition, ProvenanceEntry, compose
from offerloop.assembly.document import Block
from offerloop.assembly.exceptions import AssemblyError
from offerloop.assembly.policy import parse_policy
from offerloop.assembly.selector import CorpusIndex

POLICY_YAML = """\
id: launch-workbook
deliverable: workbook
title: "{{ buyer.first_name | Your }} launch workbook"
subtitle: "Built from your answers on {{ date.today }}"
review: {above_offer_value: 5000}
sections:
  - key: start-here
    title: "Start here"
    intro: "Hi {{ buyer.first_name | there }}, you are at stage {{ answers.stage | unknown }}."
    slots:
      - key: orientation
        choose: 2
        kinds: [lesson, snippet]
        tags_any: [welcome, orientation]
        fallback: {title: "A first step", markdown: "Write down one product."}
  - key: your-stage
    title: "Your next move, {{ buyer.first_name | friend }}"
    slots:
      - key: stage-lessons
        choose: 2
        tags_from_answers: [stage, channels]
        fallback: {title: "Pick a direction", markdown: "Choose one idea and one buyer."}
      - key: pricing
        when: {score: readiness, gte: 2}
        kinds: [lesson, template]
        tags_any: [pricing]
        order: level
        choose: 2
        fallback: {atom: weekly-review}
  - key: advanced
    title: "Grow"
    when: {all: [{answer: stage, equals: selling}, {persona: [superfan]}]}
    slots:
      - key: growth
        tags_any: [growth]
        persona: require
        fallback: {markdown: "Ask your best buyer what to build next."}
  - key: wrap-up
    title: "Wrap up"
    slots:
      - key: review
        kinds: [checklist]
        tags_any: [review]
        fallback: {markdown: "Review your week, {{ buyer.first_name | friend }}."}
"""

POLICY = parse_policy(POLICY_YAML, path="launch.yaml")


def outline(composition: Composition) -> list[tuple[str, list[str]]]:
    """Section keys with their blocks: atom ids, or "fallback:<markdown>" for policy text."""
    return [
        (
            section.key,
            [b.atom_id if b.atom_id is not None else f"fallback:{b.markdown}" for b in section.blocks],
        )
        for section in composition.document.sections
    ]


def test_ada_gets_her_exact_document() -> None:
    composition = compose(POLICY, INDEX, ADA, QUIZ)
    document = composition.document
    assert document.title == "Ada launch workbook"
    assert document.subtitle == "Built from your answers on 2024-05-01"
    assert (document.deliverable, document.buyer_name, document.created_on) == (
        "workbook",
        "Ada Lovelace",
        "2024-05-01",
    )
    assert outline(composition) == [
        ("start-here", ["how-to-use", "welcome-note"]),
        # launch (building) + email: presell-checklist and price-anchor fit deal_seeker, so they come first
        ("your-stage", ["presell-checklist", "price-anchor", "pricing-tiers"]),
        # advanced: Ada is not selling -> skipped
        ("wrap-up", ["weekly-review"]),
    ]
    start = document.sections[0]
    assert start.title == "Start here"
    assert start.intro == "Hi Ada, you are at stage building."
    assert document.sections[1].title == "Your next move, Ada"
    welcome = start.blocks[1]
    assert welcome == Block(
        markdown="Hi Ada, this workbook follows your answers.",
        title="Welcome to your workbook",
        atom_id="welcome-note",
        atom_version="v-welcome-note",
        kind="snippet",
        minutes=2,
    )
    assert document.meta == {
        "policy_id": "launch-workbook",
        "policy_version": POLICY.version,
        "review": {"above_offer_value": 5000.0},
        "quiz_id": "intake",
        "quiz_version": "quiz-v1",
        "persona": "deal_seeker",
    }


def test_newcomer_without_name_or_persona() -> None:
    composition = compose(POLICY, INDEX, NEWCOMER, QUIZ)
    document = composition.document
    assert document.title == "Your launch workbook"
    assert document.sections[0].intro == "Hi there, you are at stage idea."
    assert document.sections[1].title == "Your next move, friend"
    assert outline(composition) == [
        ("start-here", ["how-to-use", "welcome-note"]),
        # validation: "idea" matches validate-idea; the other two score 0 and are ordered by id
        ("your-stage", ["validate-idea", "audience-first"]),
        # pricing skipped (readiness 1), advanced skipped
        ("wrap-up", ["weekly-review"]),
    ]
    assert document.buyer_name is None


def test_seller_gets_the_advanced_section_and_its_fallback_because_growth_loop_is_taken() -> None:
    composition = compose(POLICY, INDEX, SELLER, QUIZ)
    assert outline(composition) == [
        ("start-here", ["how-to-use", "welcome-note"]),
        # pricing + growth + social: growth-loop fits superfan; social-calendar matches "Social media"
        # pricing, ordered by level
        ("your-stage", ["growth-loop", "social-calendar", "price-anchor", "pricing-tiers"]),
        # growth-loop is already used: the text fallback fills the slot
        ("advanced", ["fallback:Ask your best buyer what to build next."]),
        ("wrap-up", ["weekly-review"]),
    ]
    fallback = composition.document.sections[2].blocks[0]
    assert fallback == Block(markdown="Ask your best buyer what to build next.", fallback=True)
    entry = composition.provenance[6]
    assert entry == ProvenanceEntry(
        location="sections[2].slots[0]",
        section="advanced",
        slot="growth",
        status="fallback",
        fallback="text",
        candidates=0,
        excluded=1,
        tags=("growth",),
        reason="no atom passed the rules (1 already in the document)",
    )


def test_atom_fallback_and_the_no_duplicate_rule_chain() -> None:
    # Without pricing-tiers, Ada's pricing slot has no candidate left (price-anchor is used above):
    # its fallback atom weekly-review fills it, so the wrap-up slot falls back to its text.
    corpus = [atom for atom in CORPUS if atom.id != "pricing-tiers"]
    composition = compose(POLICY, corpus, ADA, QUIZ)
    assert outline(composition) == [
        ("start-here", ["how-to-use", "welcome-note"]),
        ("your-stage", ["presell-checklist", "price-anchor", "weekly-review"]),
        ("wrap-up", ["fallback:Review your week, Ada."]),
    ]
    blocks = composition.document.blocks()
    assert [b.fallback for b in blocks] == [False, False, False, False, True, True]
    assert blocks[4].atom_id == "weekly-review" and blocks[4].atom_version == "v-weekly-review"
    assert blocks[5] == Block(markdown="Review your week, Ada.", fallback=True)
    ids = [b.atom_id for b in blocks if b.atom_id is not None]
    assert len(ids) == len(set(ids))
    pricing = composition.provenance[4]
    assert (pricing.location, pricing.status, pricing.fallback) == (
        "sections[1].slots[1]",
        "fallback",
        "atom:weekly-review",
    )
    assert pricing.atoms == (ChosenAtom("weekly-review", "v-weekly-review", 0.0, "fallback atom"),)


def test_a_used_fallback_atom_adds_nothing() -> None:
    policy = parse_policy(
        """\
id: p
title: T
sections:
  - key: a
    title: A
    slots:
      - {key: first, tags_any: [review], fallback: {markdown: x}}
      - {key: second, tags_any: [nothing], fallback: {atom: weekly-review}}
"""
    )
    composition = compose(policy, INDEX, ADA)
    assert outline(composition) == [("a", ["weekly-review"])]
    assert composition.provenance[2].status == "empty"
    assert composition.provenance[2].reason == (
        "no atom passed the rules; fallback atom 'weekly-review' is already in the document"
    )


def test_complete_provenance() -> None:
    composition = compose(POLICY, INDEX, ADA, QUIZ)
    assert composition.policy_id == "launch-workbook"
    assert composition.policy_version == POLICY.version
    assert (composition.quiz_id, composition.quiz_version) == ("intake", "quiz-v1")
    assert composition.inputs == ADA.to_dict()
    summary = [
        (
            e.location,
            e.section,
            e.slot,
            e.status,
            [a.id for a in e.atoms],
            e.fallback,
            e.candidates,
            e.excluded,
        )
        for e in composition.provenance
    ]
    assert summary == [
        ("sections[0]", "start-here", None, "rendered", [], None, 0, 0),
        (
            "sections[0].slots[0]",
            "start-here",
            "orientation",
            "selected",
            ["how-to-use", "welcome-note"],
            None,
            2,
            0,
        ),
        ("sections[1]", "your-stage", None, "rendered", [], None, 0, 0),
        (
            "sections[1].slots[0]",
            "your-stage",
            "stage-lessons",
            "selected",
            ["presell-checklist", "price-anchor"],
            None,
            4,
            0,
        ),
        ("sections[1].slots[1]", "your-stage", "pricing", "selected", ["pricing-tiers"], None, 1, 1),
        ("sections[2]", "advanced", None, "skipped", [], None, 0, 0),
        ("sections[3]", "wrap-up", None, "rendered", [], None, 0, 0),
        ("sections[3].slots[0]", "wrap-up", "review", "selected", ["weekly-review"], None, 1, 0),
    ]
    entries = composition.provenance
    assert entries[5].reason == "when is false: (answers.stage in [selling] and persona in [superfan])"
    assert entries[0].reason == "unconditional"
    assert entries[3].tags == ("launch", "email")
    assert entries[3].reason == "2 of 4 candidates (choose 2)"
    stage_atoms = entries[3].atoms
    assert [a.version for a in stage_atoms] == ["v-presell-checklist", "v-price-anchor"]
    assert stage_atoms[0].score > stage_atoms[1].score > 0
    assert stage_atoms[0].reason.startswith("rank 1; bm25 ") and stage_atoms[0].reason.endswith(
        "persona deal_seeker"
    )
    # Every atom in the document is in the provenance with its version.
    recorded = [(a.id, a.version) for e in entries for a in e.atoms]
    assert recorded == composition.atoms()
    # JSON-ready.
    assert (
        json.loads(json.dumps(composition.to_dict()))["provenance"][3]["atoms"][0]["id"]
        == "presell-checklist"
    )


def test_slot_when_false_is_recorded() -> None:
    composition = compose(POLICY, INDEX, NEWCOMER, QUIZ)
    pricing = [e for e in composition.provenance if e.slot == "pricing"]
    assert pricing == [
        ProvenanceEntry(
            location="sections[1].slots[1]",
            section="your-stage",
            slot="pricing",
            status="skipped",
            reason="when is false: scores.readiness >= 2",
        )
    ]


def test_general_forms_decide_sections_and_give_their_reasons() -> None:
    policy = parse_policy(
        """\
id: p
title: T
sections:
  - {key: base, title: Base, intro: hi}
  - {key: middle, title: Middle, intro: hi, when: {path: scores.readiness, between: [1, 2]}}
  - {key: silent, title: Silent, intro: hi, when: {not: {answer: channels, answered: true}}}
  - {key: persona-less, title: No persona, intro: hi, when: {path: persona, exists: false}}
"""
    )
    reasons = {
        name: [(e.section, e.status, e.reason) for e in compose(policy, INDEX, who, QUIZ).provenance]
        for name, who in (("newcomer", NEWCOMER), ("seller", SELLER))
    }
    assert reasons == {
        "newcomer": [  # readiness 1, channels [] (unanswered), no persona
            ("base", "rendered", "unconditional"),
            ("middle", "rendered", "when is true: scores.readiness between [1, 2]"),
            ("silent", "rendered", "when is true: not answers.channels exists"),
            ("persona-less", "rendered", "when is true: persona is missing"),
        ],
        "seller": [  # readiness 3, channels [social], persona superfan
            ("base", "rendered", "unconditional"),
            ("middle", "skipped", "when is false: scores.readiness between [1, 2]"),
            ("silent", "skipped", "when is false: not answers.channels exists"),
            ("persona-less", "skipped", "when is false: persona is missing"),
        ],
    }


def test_same_inputs_give_the_identical_document_whatever_the_corpus_order() -> None:
    first = compose(POLICY, INDEX, SELLER, QUIZ)
    assert compose(POLICY, INDEX, SELLER, QUIZ) == first
    rng = random.Random(3)
    for _ in range(5):
        shuffled = list(CORPUS)
        rng.shuffle(shuffled)
        assert compose(POLICY, shuffled, SELLER, QUIZ) == first
        assert compose(POLICY, CorpusIndex(shuffled), SELLER, QUIZ).document == first.document


def test_no_atom_twice_for_many_buyers() -> None:
    stages = ["idea", "building", "selling", None]
    channels = [[], ["email"], ["social", "none"], ["email", "social", "none"]]
    personas = [None, "deal_seeker", "superfan"]
    for stage in stages:
        for chosen in channels:
            for persona in personas:
                answers = {"channels": chosen} | ({"stage": stage} if stage else {})
                inputs = buyer(answers=answers, persona=persona, scores={"readiness": 3.0})
                composition = compose(POLICY, INDEX, inputs, QUIZ)
                ids = [b.atom_id for b in composition.document.blocks() if b.atom_id is not None]
                assert len(ids) == len(set(ids))
                assert composition.document.sections  # never empty


def test_missing_fallback_atom_and_empty_document_are_errors() -> None:
    corpus = [atom for atom in CORPUS if atom.id not in ("pricing-tiers", "weekly-review")]
    with pytest.raises(AssemblyError) as info:
        compose(POLICY, corpus, ADA, QUIZ)
    assert info.value.code == "unknown_fallback_atom"
    assert info.value.message == "sections[1].slots[1]: fallback atom 'weekly-review' is not in the corpus"

    conditional = parse_policy(
        "id: p\ntitle: T\nsections:\n  - {key: a, title: A, intro: hi, when: {persona: [superfan]}}\n"
    )
    with pytest.raises(AssemblyError) as empty:
        compose(conditional, INDEX, ADA)
    assert empty.value.code == "empty_document"
    assert empty.value.status_code == 422


def test_intro_only_sections_render_and_sections_without_content_are_left_out() -> None:
    policy = parse_policy(
        """\
id: p
title: T
sections:
  - {key: hello, title: Hello, intro: "Hi {{ buyer.first_name | you }}"}
  - key: maybe
    title: Maybe
    slots:
      - {key: s, when: {persona: [nobody]}, fallback: {markdown: x}}
"""
    )
    composition = compose(policy, INDEX, NEWCOMER)
    assert [(s.key, s.intro, s.blocks) for s in composition.document.sections] == [("hello", "Hi you", ())]
    assert [(e.location, e.status) for e in composition.provenance] == [
        ("sections[0]", "rendered"),
        ("sections[1]", "empty"),
        ("sections[1].slots[0]", "skipped"),
    ]


def test_compose_without_quiz_uses_no_answer_tags() -> None:
    composition = compose(POLICY, INDEX, ADA)
    # tags_from_answers needs the quiz's option tags: without it the stage slot falls back.
    assert outline(composition)[1] == (
        "your-stage",
        ["fallback:Choose one idea and one buyer.", "price-anchor", "pricing-tiers"],
    )
    assert composition.quiz_id is None
    assert replace(composition, quiz_id="x") != composition
