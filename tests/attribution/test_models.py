"""Every attribution model on hand-built paths, against values solved on paper (docs/attribution.md)."""

from __future__ import annotations

import numpy as np
import pytest

from offerloop.attribution.exceptions import AttributionInputError, TooManyChannels
from offerloop.attribution.models import PathSet, attribute, markov, shapley

EXACT = {"rel": 1e-12, "abs": 1e-12}


def _by_channel(result: object) -> dict[str, tuple[float, float, float | None]]:
    d = result.as_dict()  # type: ignore[attr-defined]
    return {c["channel"]: (c["conversions"], c["value"], c["removal_effect"]) for c in d["channels"]}


def _flat(d: dict[str, tuple[float | None, ...]]) -> dict[tuple[str, int], float]:
    """pytest.approx compares flat mappings of numbers only: one key per channel and field (None is -1)."""
    return {(c, i): -1.0 if x is None else x for c, v in d.items() for i, x in enumerate(v)}


def approx(d: dict[str, tuple[float | None, ...]]) -> object:
    return pytest.approx(_flat(d), **EXACT)


# A > B: 1 conversion worth 10; B: 1 conversion worth 20 and 1 null; A: 1 null.
THREE = PathSet.build([["A", "B"], ["B"], ["A"]], [1, 1, 0], [10, 20, 0], [0, 1, 1])


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("first", {"A": (1, 10), "B": (1, 20)}),
        ("last", {"A": (0, 0), "B": (2, 30)}),
        ("linear", {"A": (0.5, 5), "B": (1.5, 25)}),
        ("position", {"A": (0.5, 5), "B": (1.5, 25)}),  # two touches: 50/50, one touch: 100%
        ("shapley", {"A": (0.5, 5), "B": (1.5, 25)}),
    ],
)
def test_three_paths_heuristics_and_shapley(model: str, expected: dict[str, tuple[float, float]]) -> None:
    got = _by_channel(attribute(THREE, model))
    assert _flat({c: (v[0], v[1]) for c, v in got.items()}) == approx(expected)
    assert all(v[2] is None for v in got.values())


def test_three_paths_markov_removal_effects() -> None:
    # start -> A 2/4, B 2/4; A -> B 1/2, null 1/2; B -> conv 2/3, null 1/3. P(conv) = 1/6 + 1/3 = 1/2.
    # Without A: 1/2 * 2/3 = 1/3 -> RE 1/3. Without B: 0 -> RE 1. 2 conversions shared 1/3 : 1.
    # Value: B -> conv brings 30/3 = 10 per step, E[value] = 7.5, without A 5 (RE 1/3), without B 0 (RE 1).
    got = _by_channel(markov(THREE))
    assert _flat(got) == approx({"A": (0.5, 7.5, 1 / 3), "B": (1.5, 22.5, 1.0)})


def test_position_and_time_decay_on_a_long_path() -> None:
    ps = PathSet.build([["A", "B", "C", "B"]], [1], [100])
    assert _flat(_by_channel(attribute(ps, "position"))) == approx(
        {"A": (0.4, 40, None), "B": (0.5, 50, None), "C": (0.1, 10, None)}
    )
    # Ages 3, 2, 1, 0 (positions from the end), half-life 1: weights 1/8, 1/4, 1/2, 1 over 15/8.
    assert _flat(_by_channel(attribute(ps, "time_decay", half_life=1.0))) == approx(
        {"A": (1 / 15, 100 / 15, None), "B": (2 / 3, 200 / 3, None), "C": (4 / 15, 400 / 15, None)}
    )
    # Ages in days 14, 7, 7, 0 with a 7-day half-life: weights 1/4, 1/2, 1/2, 1 over 9/4.
    timed = PathSet.build([["A", "B", "C", "B"]], [1], [100], ages=[[14.0, 7.0, 7.0, 0.0]])
    assert _flat(_by_channel(attribute(timed, "time_decay", half_life=7.0))) == approx(
        {"A": (1 / 9, 100 / 9, None), "B": (2 / 3, 200 / 3, None), "C": (2 / 9, 200 / 9, None)}
    )


def test_position_middle_share_is_split_among_middle_touches() -> None:
    ps = PathSet.build([["A", "B", "C", "D", "E"]], [3], [0])
    got = _by_channel(attribute(ps, "position"))
    assert {c: v[0] for c, v in got.items()} == pytest.approx(
        {"A": 1.2, "B": 0.2, "C": 0.2, "D": 0.2, "E": 1.2}, **EXACT
    )


# A > B: 1 conversion, 1 null; B > B: 1 null; B > A: 1 conversion; A: 1 conversion.
ORDERED = PathSet.build([["A", "B"], ["B", "B"], ["B", "A"], ["A"]], [1, 0, 1, 1], [0, 0, 0, 0], [1, 1, 0, 0])


def test_markov_order_1_solved_by_hand() -> None:
    # start: A 3/5, B 2/5. A: -> B 2/4, conv 2/4. B: conv 1/5, null 2/5, B 1/5, A 1/5.
    # a = b/2 + 1/2, b = 1/5 + b/5 + a/5 -> a = 5/7, b = 3/7, P = 3/5.
    # Without A: b = 1/5 + b/5 -> 1/4, P = 1/10 (RE 5/6). Without B: a = 1/2, P = 3/10 (RE 1/2).
    got = _by_channel(markov(ORDERED, order=1))
    assert _flat(got) == approx({"A": (15 / 8, 0, 5 / 6), "B": (9 / 8, 0, 1 / 2)})


def test_markov_order_2_solved_by_hand() -> None:
    # States (A), (B) at the start, then (A,B), (B,B), (B,A). start: (A) 3/5, (B) 2/5.
    # (A): -> (A,B) 2/3, conv 1/3; (A,B): conv 1/2, null 1/2; (B): -> (B,B) 1/2, (B,A) 1/2;
    # (B,B): null; (B,A): conv. P((A)) = 2/3, P((B)) = 1/2, P = 3/5.
    # Without A: 0 (RE 1). Without B: only (A) -> conv: 3/5 * 1/3 = 1/5 (RE 2/3).
    got = _by_channel(markov(ORDERED, order=2))
    assert _flat(got) == approx({"A": (9 / 5, 0, 1.0), "B": (6 / 5, 0, 2 / 3)})


def test_markov_order_3_equals_order_2_on_paths_of_two_touches() -> None:
    assert _flat(_by_channel(markov(ORDERED, order=3))) == approx(_by_channel(markov(ORDERED, order=2)))


def test_markov_self_loops_do_not_change_order_1_absorption() -> None:
    a = _by_channel(markov(PathSet.build([["A", "A", "B"], ["B"]], [1, 1], [1, 1], [1, 0])))
    b = _by_channel(markov(PathSet.build([["A", "B"], ["B"]], [1, 1], [1, 1], [1, 0])))
    assert _flat(a) == approx(b)


def test_markov_without_conversions_gives_zero_credit() -> None:
    got = _by_channel(markov(PathSet.build([["A", "B"]], [0], [0], [4])))
    assert got == {"A": (0.0, 0.0, 0.0), "B": (0.0, 0.0, 0.0)}


def test_shapley_by_coalitions_equals_the_equal_split_over_distinct_channels() -> None:
    rng = np.random.default_rng(7)
    names = [f"c{i}" for i in range(8)]
    paths = [list(rng.choice(names, size=int(rng.integers(1, 6)))) for _ in range(300)]
    conv = rng.integers(0, 4, size=300).astype(float)
    val = conv * rng.integers(1, 50, size=300)
    got = shapley(PathSet.build(paths, conv, val))
    expected_conv = dict.fromkeys(names, 0.0)
    expected_val = dict.fromkeys(names, 0.0)
    for p, c, v in zip(paths, conv, val, strict=True):
        for ch in set(p):
            expected_conv[ch] += c / len(set(p))
            expected_val[ch] += v / len(set(p))
    assert dict(zip(got.channels, got.conversions, strict=True)) == pytest.approx(expected_conv, rel=1e-9)
    assert dict(zip(got.channels, got.values, strict=True)) == pytest.approx(expected_val, rel=1e-9)
    assert got.conversions.sum() == pytest.approx(conv.sum(), rel=1e-12)


def test_shapley_refuses_more_than_15_channels() -> None:
    paths = [[f"c{i}" for i in range(16)]]
    with pytest.raises(TooManyChannels, match="at most 15"):
        shapley(PathSet.build(paths, [1]))
    # Channels that only appear in paths without conversions are not players.
    ok = shapley(PathSet.build([*paths, ["c0"]], [0, 2]))
    assert dict(zip(ok.channels, ok.conversions, strict=True))["c0"] == 2.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"paths": [[]], "conversions": [1]}, "path 1 is empty"),
        ({"paths": [["A"]], "conversions": [-1]}, "must not be negative"),
        ({"paths": [["A"]], "conversions": [float("nan")]}, "finite"),
        ({"paths": [["A"]], "conversions": [1, 2]}, "one number per path"),
        ({"paths": [["A"]], "conversions": [1], "ages": [[1.0, 2.0]]}, "one age per touch"),
    ],
)
def test_bad_input_is_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(AttributionInputError, match=message):
        PathSet.build(**kwargs)  # type: ignore[arg-type]


def test_unknown_model_and_order_are_refused() -> None:
    with pytest.raises(AttributionInputError, match="unknown model"):
        attribute(THREE, "u_shaped")
    with pytest.raises(AttributionInputError, match="order must be 1 to 3"):
        markov(THREE, order=4)
    with pytest.raises(AttributionInputError, match="half_life"):
        attribute(THREE, "time_decay", half_life=0)


def _synthetic(n: int, seed: int) -> PathSet:
    rng = np.random.default_rng(seed)
    names = np.array([f"ch{i:02d}" for i in range(12)])
    seen: set[tuple[str, ...]] = set()
    paths: list[list[str]] = []
    while len(paths) < n:
        p = tuple(rng.choice(names, size=int(rng.integers(1, 9))).tolist())
        if p not in seen:
            seen.add(p)
            paths.append(list(p))
    conv = rng.integers(0, 5, size=n).astype(float)
    return PathSet.build(paths, conv, conv * 30.0, rng.integers(0, 20, size=n).astype(float))


def test_heuristics_match_channel_attribution() -> None:
    ca = pytest.importorskip("ChannelAttribution")
    pd = pytest.importorskip("pandas")
    ps = _synthetic(500, seed=3)
    df = pd.DataFrame({"path": [" > ".join(p) for p in ps.paths], "conv": ps.conversions, "val": ps.values})
    theirs = ca.heuristic_models(df, "path", "conv", var_value="val", sep=">", flg_pro=False)
    theirs = theirs.set_index("channel_name")
    for ours_name, col in (("first", "first_touch"), ("last", "last_touch"), ("linear", "linear_touch")):
        ours = attribute(ps, ours_name)
        for ch, c, v in zip(ours.channels, ours.conversions, ours.values, strict=True):
            assert c == pytest.approx(theirs.loc[ch, f"{col}_conversions"], rel=1e-12, abs=1e-9)
            assert v == pytest.approx(theirs.loc[ch, f"{col}_value"], rel=1e-12, abs=1e-9)


def test_markov_on_10000_distinct_paths_credits_every_conversion() -> None:
    # Its speed is measured in bench/attribution.py, not here.
    ps = _synthetic(10_000, seed=0)
    result = markov(ps)
    assert result.conversions.sum() == pytest.approx(ps.conversions.sum(), rel=1e-12)


def test_paths_from_strings_equal_the_same_paths_as_lists() -> None:
    ps = _synthetic(300, seed=5)
    texts = [" > ".join(p) for p in ps.paths]
    split = PathSet.from_strings(texts, ">", ps.conversions, ps.values, ps.nulls)
    assert [tuple(p) for p in split.paths] == [tuple(p) for p in ps.paths]
    assert split.paths[-1] == tuple(ps.paths[-1])
    assert split.paths[1:3] == [tuple(p) for p in ps.paths[1:3]]
    for model in ("first", "last", "linear", "time_decay", "position", "markov", "shapley"):
        a, b = attribute(ps, model), attribute(split, model)
        assert a.channels == b.channels
        assert np.allclose(a.conversions, b.conversions, rtol=1e-12, atol=0)
        assert np.allclose(a.values, b.values, rtol=1e-12, atol=0)


@pytest.mark.parametrize(("texts", "message"), [(["A>B", " "], "path 2: the path is empty"),
                                                (["A>>B"], "path 1: an empty channel in 'A>>B'")])  # fmt: skip
def test_paths_from_strings_refuse_empty_channels(texts: list[str], message: str) -> None:
    with pytest.raises(AttributionInputError, match=message):
        PathSet.from_strings(texts, ">", [1.0] * len(texts))
