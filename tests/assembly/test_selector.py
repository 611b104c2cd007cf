"""Selection: the hard rules, BM25 against a hand computation, persona preference, order and determinism.

The corpus, quiz and buyers defined here are shared with test_composer.py and test_lint.py.
"""

from __future__ import annotations

import math
import random
from dataclasses import replace
from datetime import date
from typing import Any

import pytest

from offerloop.assembly.exceptions import AssemblyError
from offerloop.assembly.inputs import BuyerInputs
from offerloop.assembly.policy import AtomFallback, LevelRange, Slot, TextFallback
from offerloop.assembly.selector import CorpusIndex, answer_tags, query_text, tokenize
from offerloop.content.model import Atom, Option, Question, Quiz

TODAY = date(2024, 5, 1)


def make_atom(
    atom_id: str,
    kind: str,
    tags: tuple[str, ...],
    title: str,
    body: str,
    *,
    level: int = 1,
    persona_fit: tuple[str, ...] = (),
    minutes: int | None = None,
) -> Atom:
    return Atom(
        id=atom_id,
        title=title,
        kind=kind,
        body=body,
        version=f"v-{atom_id}",
        tags=tags,
        level=level,
        persona_fit=persona_fit,
        minutes=minutes,
    )


CORPUS: tuple[Atom, ...] = (
    make_atom(
        "welcome-note",
        "snippet",
        ("welcome", "orientation"),
        "Welcome to your workbook",
        "Hi {{ buyer.first_name | there }}, this workbook follows your answers.",
        minutes=2,
    ),
    make_atom(
        "how-to-use",
        "lesson",
        ("orientation",),
        "How to use this workbook",
        "Work through one section per day. Tick the checklists as you go.",
        minutes=5,
    ),
    make_atom(
        "validate-idea",
        "lesson",
        ("validation",),
        "Validate your idea before you build",
        "Talk to five buyers. Ask about the problem, not the product idea.",
        minutes=15,
    ),
    make_atom(
        "presell-checklist",
        "checklist",
        ("validation", "launch"),
        "Presell checklist",
        "- [ ] Write a one-page offer\n- [ ] Set a presale price\n- [ ] Email ten people",
        level=2,
        persona_fit=("deal_seeker",),
        minutes=10,
    ),
    make_atom(
        "launch-plan",
        "lesson",
        ("launch",),
        "Plan a two-week launch",
        "Schedule emails, social posts and a launch day. A launch needs an audience.",
        level=2,
        minutes=20,
    ),
    make_atom(
        "price-anchor",
        "lesson",
        ("pricing", "launch"),
        "Anchor your price before you show it",
        "Show the premium tier first so the main price feels fair. Pricing anchor.",
        level=2,
        persona_fit=("deal_seeker",),
        minutes=10,
    ),
    make_atom(
        "pricing-tiers",
        "template",
        ("pricing",),
        "Three pricing tiers template",
        "| Tier | Price |\n|---|---|\n| Basic | 29 |",
        level=3,
        minutes=25,
    ),
    make_atom(
        "email-welcome",
        "template",
        ("email", "launch"),
        "Welcome email sequence",
        "Three emails to welcome new subscribers to your email list.",
        persona_fit=("superfan",),
        minutes=10,
    ),
    make_atom(
        "social-calendar",
        "template",
        ("social",),
        "Social media content calendar",
        "Plan a month of social posts in one sitting.",
        minutes=15,
    ),
    make_atom(
        "audience-first",
        "exercise",
        ("audience", "validation"),
        "Build an audience from zero",
        "Pick one channel. Post daily for thirty days. Your first hundred followers.",
        minutes=30,
    ),
    make_atom(
        "growth-loop",
        "lesson",
        ("growth",),
        "Design a referral growth loop",
        "Reward buyers who bring buyers. Referral loops compound growth.",
        level=3,
        persona_fit=("superfan",),
        minutes=20,
    ),
    make_atom(
        "weekly-review",
        "checklist",
        ("review",),
        "Weekly review checklist",
        "- [ ] What sold?\n- [ ] What did buyers ask?",
        minutes=10,
    ),
)

QUIZ = Quiz(
    id="intake",
    title="Shape your workbook",
    version="quiz-v1",
    questions=(
        Question(
            id="stage",
            prompt="Where are you?",
            type="single",
            options=(
                Option("idea", "Just an idea", {"readiness": 1}, ("validation",)),
                Option("building", "Building it", {"readiness": 2}, ("launch",)),
                Option("selling", "Already selling", {"readiness": 3}, ("pricing", "growth")),
            ),
        ),
        Question(
            id="channels",
            prompt="Where is your audience?",
            type="multiple",
            required=False,
            options=(
                Option("email", "Email list", {}, ("email",)),
                Option("social", "Social media", {}, ("social",)),
                Option("none", "No audience yet", {"readiness": -1}, ("audience",)),
            ),
        ),
        Question(
            id="confidence",
            prompt="How confident are you about pricing?",
            type="scale",
            min=1,
            max=5,
            score="pricing_confidence",
        ),
        Question(id="goal", prompt="Your goal?", type="text", required=False, max_length=280),
    ),
)


def buyer(**kwargs: Any) -> BuyerInputs:
    return BuyerInputs(today=TODAY, **kwargs)


ADA = buyer(
    name="Ada Lovelace",
    persona="deal_seeker",
    persona_confidence=0.8,
    answers={"stage": "building", "channels": ["email"], "confidence": 4, "goal": "Launch my course"},
    scores={"readiness": 2.0, "pricing_confidence": 4.0},
    goal_text="Launch my course to my email list",
)
NEWCOMER = buyer(answers={"stage": "idea", "channels": []}, scores={"readiness": 1.0})
SELLER = buyer(
    name="Grace Hopper",
    first_name="Grace",
    persona="superfan",
    answers={"stage": "selling", "channels": ["social"]},
    scores={"readiness": 3.0},
)

INDEX = CorpusIndex(CORPUS)


def slot(key: str = "s", **kwargs: Any) -> Slot:
    return Slot(key=key, fallback=TextFallback("Do one thing."), **kwargs)


def ids(selection: Any) -> list[str]:
    return [pick.atom.id for pick in selection.picks]


# --------------------------------------------------------------------------------------------------
# Tokenizer and BM25


def test_tokenizer_lowercases_splits_on_non_alphanumerics_and_drops_stop_words() -> None:
    assert tokenize("The Price-Anchor, and 3 TIERS! for_you café") == [
        "price",
        "anchor",
        "3",
        "tiers",
        "café",
    ]


def test_bm25_matches_a_hand_computation() -> None:
    tiny = [
        make_atom("a", "lesson", (), "apple banana", "apple"),  # apple 2, banana 1: length 3
        make_atom("b", "lesson", (), "banana", "cherry"),  # banana 1, cherry 1: length 2
        make_atom("c", "lesson", (), "cherry cherry", "date"),  # cherry 2, date 1: length 3
    ]
    index = CorpusIndex(tiny)
    relevance = index.scores("Apple and cherry")
    # N = 3, avgdl = 8/3; idf = ln(1 + (N - n + 0.5) / (n + 0.5)); k1 = 1.2, b = 0.75.
    idf_apple = math.log(1 + 2.5 / 1.5)  # n = 1
    idf_cherry = math.log(1 + 1.5 / 2.5)  # n = 2
    expected = {
        "a": idf_apple * 2 * 2.2 / (2 + 1.2 * (0.25 + 0.75 * 3 / (8 / 3))),
        "b": idf_cherry * 1 * 2.2 / (1 + 1.2 * (0.25 + 0.75 * 2 / (8 / 3))),
        "c": idf_cherry * 2 * 2.2 / (2 + 1.2 * (0.25 + 0.75 * 3 / (8 / 3))),
    }
    assert relevance.terms == ("apple", "cherry")
    assert set(relevance.scores) == {"a", "b", "c"}
    for atom_id, value in expected.items():
        assert relevance.score(atom_id) == pytest.approx(value, rel=1e-12)
    assert relevance.score("a") == pytest.approx(0.980829 * 4.4 / 3.3125, abs=1e-6)  # = 1.302837
    assert index.idf("apple") == pytest.approx(math.log(8 / 3))
    # Repeating a query word does not change anything: each distinct term counts once.
    assert index.scores("cherry apple apple cherry").scores == relevance.scores
    assert index.scores("zebra").scores == {}


def test_query_is_option_labels_free_text_and_goal() -> None:
    inputs = buyer(
        answers={
            "stage": "building",
            "channels": ["email", "social"],
            "confidence": 4,
            "goal": "Sell my course",
        },
        goal_text="Grow my list",
    )
    assert query_text(inputs, QUIZ) == "Building it\nEmail list\nSocial media\nSell my course\nGrow my list"
    # Without a quiz, string answers are used as they are (in question id order).
    assert query_text(inputs) == "email\nsocial\nSell my course\nbuilding\nGrow my list"


def test_answer_tags_come_from_the_chosen_options() -> None:
    assert answer_tags(["stage", "channels"], ADA, QUIZ) == ("launch", "email")
    assert answer_tags(["stage", "channels"], SELLER, QUIZ) == ("pricing", "growth", "social")
    assert answer_tags(["stage"], ADA, None) == ()
    assert answer_tags(["nope"], ADA, QUIZ) == ()


# --------------------------------------------------------------------------------------------------
# Rules and ranking: exact ids in exact order


def test_kinds_and_tags_any_filter_then_relevance_orders() -> None:
    orientation = slot(choose=2, kinds=("lesson", "snippet"), tags_any=("welcome", "orientation"))
    # No query term matches either atom: ties are broken by id.
    assert ids(INDEX.select(orientation, NEWCOMER, quiz=QUIZ)) == ["how-to-use", "welcome-note"]
    # A goal about the welcome puts welcome-note first.
    welcomed = buyer(goal_text="a warm welcome and my answers")
    assert ids(INDEX.select(orientation, welcomed, quiz=QUIZ)) == ["welcome-note", "how-to-use"]
    # choose: 1 keeps only the best.
    assert ids(INDEX.select(replace(orientation, choose=1), welcomed, quiz=QUIZ)) == ["welcome-note"]


def test_tags_from_answers_persona_prefer_then_bm25() -> None:
    stage_slot = slot(choose=2, tags_from_answers=("stage", "channels"))
    # idea + no audience: tags validation, audience -> validate-idea, presell-checklist, audience-first.
    idea = buyer(persona="deal_seeker", answers={"stage": "idea", "channels": ["none"]})
    selection = INDEX.select(stage_slot, idea, quiz=QUIZ)
    assert selection.tags_any == ("validation", "audience")
    assert selection.candidates == 3
    # presell-checklist fits deal_seeker: first despite matching no query term; then "idea" wins.
    assert ids(selection) == ["presell-checklist", "validate-idea"]
    assert selection.picks[0].score == 0.0
    assert selection.picks[1].score > 0
    # Without a persona, pure relevance: "idea" (rarer, shorter atom) beats "audience".
    no_persona = replace(idea, persona=None)
    assert ids(INDEX.select(stage_slot, no_persona, quiz=QUIZ)) == ["validate-idea", "audience-first"]
    # persona: ignore ranks the deal_seeker the same way as no persona.
    ignoring = replace(stage_slot, persona="ignore")
    assert ids(INDEX.select(ignoring, idea, quiz=QUIZ)) == ["validate-idea", "audience-first"]


def test_ada_gets_launch_and_email_atoms_with_her_persona_first() -> None:
    selection = INDEX.select(slot(choose=2, tags_from_answers=("stage", "channels")), ADA, quiz=QUIZ)
    assert selection.tags_any == ("launch", "email")
    assert selection.candidates == 4  # presell-checklist, launch-plan, price-anchor, email-welcome
    assert ids(selection) == ["presell-checklist", "price-anchor"]
    first = selection.picks[0]
    assert first.reason == f"rank 1; bm25 {first.score:.3f} (email, launch); tags launch; persona deal_seeker"
    assert selection.picks[1].reason.startswith("rank 2; bm25 ")
    assert selection.picks[1].reason.endswith("(launch); tags launch; persona deal_seeker")


def test_a_buyer_who_skipped_the_tag_questions_matches_nothing() -> None:
    selection = INDEX.select(slot(tags_from_answers=("stage",)), buyer(), quiz=QUIZ)
    assert selection.picks == ()
    assert selection.used_fallback
    assert selection.fallback == TextFallback("Do one thing.")
    assert selection.tags_any == ()


def test_tags_all_level_and_persona_require() -> None:
    assert ids(INDEX.select(slot(tags_all=("validation", "launch")), NEWCOMER)) == ["presell-checklist"]
    top_level = slot(choose=5, tags_any=("pricing", "growth"), level=LevelRange(3, 3))
    assert ids(INDEX.select(top_level, NEWCOMER)) == ["growth-loop", "pricing-tiers"]
    required = slot(choose=3, persona="require")
    assert ids(INDEX.select(required, SELLER)) == ["email-welcome", "growth-loop"]
    assert ids(INDEX.select(required, ADA, quiz=QUIZ)) == ["presell-checklist", "price-anchor"]
    nobody = INDEX.select(required, NEWCOMER)
    assert nobody.picks == () and nobody.used_fallback


def test_order_re_sorts_only_the_chosen_atoms() -> None:
    pricing = slot(choose=2, kinds=("lesson", "template"), tags_any=("pricing",))
    tiers_fan = buyer(goal_text="three tiers template")
    assert ids(INDEX.select(pricing, tiers_fan)) == ["pricing-tiers", "price-anchor"]
    by_level = INDEX.select(replace(pricing, order="level"), tiers_fan)
    assert ids(by_level) == ["price-anchor", "pricing-tiers"]
    assert by_level.picks[0].reason.startswith("rank 2;")  # the rank is the relevance rank
    assert ids(INDEX.select(replace(pricing, order="minutes"), tiers_fan)) == [
        "price-anchor",
        "pricing-tiers",
    ]
    assert ids(INDEX.select(replace(pricing, order="title"), tiers_fan)) == ["price-anchor", "pricing-tiers"]
    # order applies after the cut: the best k are chosen first.
    by_level_one = INDEX.select(replace(pricing, order="level", choose=1), tiers_fan)
    assert ids(by_level_one) == ["pricing-tiers"]


def test_minutes_order_puts_unknown_durations_last() -> None:
    atoms = [
        make_atom("x", "lesson", ("t",), "X", "x", minutes=None),
        make_atom("y", "lesson", ("t",), "Y", "y", minutes=30),
        make_atom("z", "lesson", ("t",), "Z", "z", minutes=5),
    ]
    selection = CorpusIndex(atoms).select(slot(choose=3, tags_any=("t",), order="minutes"), NEWCOMER)
    assert ids(selection) == ["z", "y", "x"]


def test_excluded_atoms_are_never_chosen_and_are_counted() -> None:
    pricing = slot(choose=2, kinds=("lesson", "template"), tags_any=("pricing",))
    selection = INDEX.select(pricing, ADA, quiz=QUIZ, exclude={"price-anchor"})
    assert ids(selection) == ["pricing-tiers"]
    assert (selection.candidates, selection.excluded) == (1, 1)
    empty = INDEX.select(pricing, ADA, quiz=QUIZ, exclude={"price-anchor", "pricing-tiers"})
    assert empty.picks == () and empty.excluded == 2


def test_atom_fallback_is_resolved_from_the_corpus() -> None:
    missing = Slot(key="s", fallback=AtomFallback("weekly-review"), tags_any=("nothing-has-this",))
    selection = INDEX.select(missing, ADA)
    assert selection.fallback == AtomFallback("weekly-review")
    assert selection.fallback_atom is not None and selection.fallback_atom.id == "weekly-review"
    unknown = replace(missing, fallback=AtomFallback("ghost"))
    assert INDEX.select(unknown, ADA).fallback_atom is None


# --------------------------------------------------------------------------------------------------
# Determinism and the index


def test_same_result_for_any_corpus_order() -> None:
    stage_slot = slot(choose=3, tags_from_answers=("stage", "channels"))
    expected = INDEX.select(stage_slot, ADA, quiz=QUIZ)
    rng = random.Random(7)
    for _ in range(5):
        shuffled = list(CORPUS)
        rng.shuffle(shuffled)
        assert CorpusIndex(shuffled).select(stage_slot, ADA, quiz=QUIZ) == expected
    assert INDEX.select(stage_slot, ADA, quiz=QUIZ) == expected


def test_duplicate_atom_ids_are_refused() -> None:
    with pytest.raises(AssemblyError) as info:
        CorpusIndex([*CORPUS, CORPUS[0]])
    assert info.value.code == "duplicate_atom"
    assert info.value.status_code == 422
    assert info.value.message == "duplicate atom ids in the corpus: welcome-note"


def test_index_lookup() -> None:
    assert len(INDEX) == 12
    assert "growth-loop" in INDEX and "ghost" not in INDEX
    assert INDEX.get("growth-loop") is not None
    assert [atom.id for atom in INDEX.atoms] == sorted(atom.id for atom in CORPUS)
    assert CorpusIndex([]).scores("anything").scores == {}
