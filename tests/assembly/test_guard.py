"""The guard on hostile input: it never raises, its work is bounded and its reasons stay short."""

from __future__ import annotations

from pathlib import Path

import pytest

from offerloop.assembly.guard import MAX_REASON_ITEM, guard

SOURCE = "Confidence is not a personality trait. Do not post on every platform at once."


@pytest.mark.parametrize(
    ("candidate", "reasons"),
    [
        pytest.param("not trait " * 100_000, ("length:12987.00",), id="a megabyte is rejected unread"),
        pytest.param(" ".join(["nine hundred ninety nine thousand"] * 20), None, id="long number-word runs"),
        pytest.param("1" * 5000, ("length:64.94",), id="a 5000-digit number"),
        pytest.param("a." * 100 + "com", None, id="a very long dotted name"),
    ],
)
def test_hostile_candidates_are_rejected_without_raising(
    candidate: str, reasons: tuple[str, ...] | None
) -> None:
    result = guard(SOURCE, candidate)
    assert result.ok is False
    if reasons is not None:
        assert result.reasons == reasons
    assert all(len(r.partition(":")[2]) <= MAX_REASON_ITEM + 1 for r in result.reasons)


def test_long_number_word_runs_are_read_in_pieces() -> None:
    result = guard("Write 21 pages.", "Write twenty one pages.", min_similarity=0.0)
    assert result.reasons == ()
    words = " ".join(["one hundred"] * 10)  # 20 number words: read as pieces of at most 12
    assert guard(f"Count {words}.", f"Count {words}.", min_similarity=0.0).reasons == ()


def test_a_guard_bug_rejects_the_rewrite_instead_of_failing_the_render(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from offerloop.assembly import voice

    def broken(*args: object, **kwargs: object) -> object:
        raise RecursionError("boom")

    monkeypatch.setattr(voice, "guard", broken)
    config = voice.RewriterConfig(base_url="http://127.0.0.1:9/v1", model="m")
    assert voice._checked("a", "b", config).reasons == ("guard_error:RecursionError",)


DEMO_ATOMS = sorted((Path(__file__).resolve().parents[2] / "examples" / "demo" / "content").rglob("*.md"))


def _body(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    return text.split("---", 2)[2].strip() if text.startswith("---") else text


@pytest.mark.parametrize("path", [p for p in DEMO_ATOMS if p.read_text(encoding="utf-8").startswith("---")],
                         ids=lambda p: p.stem)  # fmt: skip
def test_every_demo_atom_passes_against_itself_and_with_contractions(path: Path) -> None:
    """ "nothing else" once read as a removed negation because the window held the stem "noth"."""
    body = _body(path)
    contracted = body.replace("Do not", "Don't").replace("do not", "don't").replace(" is not ", " isn't ")
    assert guard(body, body).reasons == ()
    assert guard(body, contracted).reasons == ()
