from fractions import Fraction
from math import comb

import numpy as np
import pytest

from rlvr.measures.passk import (
    Crossover,
    PassKCurve,
    bootstrap_ci,
    correct_counts,
    cover_at,
    coverage_split,
    crossover,
    majority_at_k,
    pass_at_k,
    pass_at_k_matrix,
    passk_curve,
    sampling_efficiency_gap,
)


def exact(n: int, c: int, k: int) -> Fraction:
    return 1 - Fraction(comb(n - c, k), comb(n, k))


# ---------------------------------------------------------------- estimator


def test_pass_at_k_matches_exact_rationals_on_grid():
    for n in (1, 2, 3, 5, 8, 13, 32, 64):
        for c in range(n + 1):
            for k in range(1, n + 1):
                got = pass_at_k(n, c, k)
                want = float(exact(n, c, k))
                assert got == pytest.approx(want, rel=1e-12, abs=1e-15), (n, c, k)


@pytest.mark.parametrize(
    "n,c,k,want",
    [
        (2, 1, 1, 0.5),
        (4, 1, 2, 0.5),  # 1 - C(3,2)/C(4,2) = 1 - 3/6
        (4, 2, 2, 5 / 6),  # 1 - C(2,2)/C(4,2) = 1 - 1/6
        (10, 0, 5, 0.0),
        (10, 10, 1, 1.0),
        (10, 3, 1, 0.3),  # pass@1 is c/n
        (5, 2, 4, 1.0),  # n - c < k: every draw of 4 holds a correct sample
    ],
)
def test_pass_at_k_hand_cases(n, c, k, want):
    assert pass_at_k(n, c, k) == pytest.approx(want, abs=1e-15)


def test_pass_at_k_large_n_is_stable():
    n = 1024
    for c, k in [(1, 1), (1, 512), (3, 1000), (17, 64), (512, 256), (1000, 24), (0, 1024)]:
        got = pass_at_k(n, c, k)
        assert 0.0 <= got <= 1.0
        assert got == pytest.approx(float(exact(n, c, k)), rel=1e-11, abs=1e-15), (c, k)
    assert pass_at_k(n, 1, 1) == pytest.approx(1 / 1024, rel=1e-14)


@pytest.mark.parametrize(
    "args,err,match",
    [
        ((256, 3, 300), ValueError, "k=300 exceeds n=256 samples: draw at least k"),
        ((10, 11, 1), ValueError, "c=11 exceeds n=10"),
        ((10, -1, 1), ValueError, "non-negative"),
        ((10, 1, 0), ValueError, "k=0 must be at least 1"),
        ((10, 1, 2.0), TypeError, "k must be an integer"),
        ((10, True, 1), TypeError, "c must be an integer"),
    ],
)
def test_pass_at_k_refuses_bad_input(args, err, match):
    with pytest.raises(err, match=match):
        pass_at_k(*args)


def test_matrix_matches_scalar_and_accepts_per_problem_n():
    counts = [0, 1, 5, 8, 8]
    ns = [8, 8, 16, 8, 16]
    ks = [1, 2, 8]
    mat = pass_at_k_matrix(counts, ns, ks)
    assert mat.shape == (5, 3)
    for i, (c, n) in enumerate(zip(counts, ns)):
        for j, k in enumerate(ks):
            assert mat[i, j] == pass_at_k(n, c, k)
    shared = pass_at_k_matrix([0, 3], 8, [1, 4])
    assert shared[1, 0] == pytest.approx(3 / 8)


def test_matrix_refuses_k_beyond_smallest_n_and_bad_counts():
    with pytest.raises(ValueError, match="k=16 exceeds n=8 samples"):
        pass_at_k_matrix([1, 2], [8, 32], [1, 16])
    with pytest.raises(ValueError, match=r"counts\[1\]=9 exceeds n=8"):
        pass_at_k_matrix([1, 9], 8, [1])
    with pytest.raises(ValueError, match="n has 3 entries but counts has 2"):
        pass_at_k_matrix([1, 2], [8, 8, 8], [1])
    with pytest.raises(ValueError, match="whole numbers"):
        pass_at_k_matrix([1.5, 2], 8, [1])
    with pytest.raises(ValueError, match="empty"):
        pass_at_k_matrix([], 8, [1])


# ---------------------------------------------------------------- bootstrap and curve


def test_bootstrap_ci_same_seed_same_numbers_and_covers_mean():
    vals = np.random.default_rng(1).random(50)
    a = bootstrap_ci(vals, n_boot=300, seed=7)
    b = bootstrap_ci(vals, n_boot=300, seed=7)
    c = bootstrap_ci(vals, n_boot=300, seed=8)
    assert a == b
    assert a != c
    assert a[0] < vals.mean() < a[1]
    lo, hi = bootstrap_ci(vals, stat=np.median, n_boot=300, seed=7)
    assert lo <= np.median(vals) <= hi


def test_bootstrap_ci_of_constant_is_degenerate_and_2d_is_per_column():
    lo, hi = bootstrap_ci(np.full(10, 0.25), n_boot=50)
    assert lo == hi == 0.25
    lo2, hi2 = bootstrap_ci(np.column_stack([np.zeros(5), np.ones(5)]), n_boot=50)
    np.testing.assert_array_equal(lo2, [0.0, 1.0])
    np.testing.assert_array_equal(hi2, [0.0, 1.0])


def test_bootstrap_ci_refuses_bad_ci_and_n_boot():
    with pytest.raises(ValueError, match="ci=1.5 must lie strictly between 0 and 1"):
        bootstrap_ci([1.0, 2.0], ci=1.5)
    with pytest.raises(ValueError, match="n_boot=0 must be at least 1"):
        bootstrap_ci([1.0, 2.0], n_boot=0)
    with pytest.raises(ValueError, match="empty"):
        bootstrap_ci([])


def test_passk_curve_mean_ci_and_reproducibility():
    counts = [0, 1, 2, 4, 8, 8, 3, 0]
    ks = [1, 2, 4, 8]
    curve = passk_curve(counts, 8, ks, n_boot=200, seed=3)
    assert isinstance(curve, PassKCurve)
    want = [np.mean([float(exact(8, c, k)) for c in counts]) for k in ks]
    np.testing.assert_allclose(curve.mean, want, rtol=1e-12)
    assert np.all(curve.low <= curve.mean) and np.all(curve.mean <= curve.high)
    assert np.all(np.diff(curve.mean) >= 0)
    assert curve.n_problems == 8 and curve.n_samples == 8
    again = passk_curve(counts, 8, ks, n_boot=200, seed=3)
    np.testing.assert_array_equal(curve.low, again.low)
    np.testing.assert_array_equal(curve.high, again.high)
    assert curve.at(1) == pytest.approx(np.mean(counts) / 8)
    with pytest.raises(ValueError, match="k=3 is not on this curve"):
        curve.at(3)
    with pytest.raises(ValueError, match="strictly increasing"):
        passk_curve(counts, 8, [4, 2], n_boot=10)


def test_passk_curve_keeps_per_problem_sample_counts():
    curve = passk_curve([1, 2], [4, 8], [1, 4], n_boot=10)
    np.testing.assert_array_equal(curve.n_samples, [4, 8])


# ---------------------------------------------------------------- crossover


def broad_vs_sharp(n_problems: int = 20):
    """Base solves 8 of 64 on every problem; RL solves all of half and none of the rest."""
    base = np.full(n_problems, 8)
    rl = np.where(np.arange(n_problems) % 2 == 0, 64, 0)
    return base, rl


def test_crossover_broad_base_overtakes_sharp_rl_at_hand_computed_k():
    # base pass@k = 1 - C(56,k)/C(64,k); C(56,k)/C(64,k) = 0.875, 0.764, 0.665, 0.578,
    # 0.501, 0.433 for k = 1..6, so base first reaches RL's 0.5 at k = 6.
    for k in range(1, 6):
        assert comb(56, k) / comb(64, k) > 0.5
    assert comb(56, 6) / comb(64, 6) <= 0.5
    base, rl = broad_vs_sharp()
    res = crossover(base, rl, 64, list(range(1, 65)), n_boot=200, seed=0)
    assert isinstance(res, Crossover)
    assert res.k_star == 6
    assert res.rl_mean[0] == pytest.approx(0.5) and res.base_mean[0] == pytest.approx(0.125)
    assert res.base_mean[-1] == 1.0 and res.rl_mean[-1] == pytest.approx(0.5)
    np.testing.assert_allclose(res.diff, res.base_mean - res.rl_mean)
    assert res.diff[0] == pytest.approx(-0.375)
    assert np.all(res.diff_low <= res.diff + 1e-12)
    assert np.all(res.diff <= res.diff_high + 1e-12)
    assert res.p_exists == 1.0
    assert res.ci_low is not None and res.ci_high is not None
    assert res.ci_low <= res.k_star <= res.ci_high
    assert "k=6" in res.note

    coarse = crossover(base, rl, 64, [1, 2, 4, 8, 16, 32, 64], n_boot=50, seed=0)
    assert coarse.k_star == 8


def test_crossover_bootstrap_is_paired_and_seeded():
    base, rl = broad_vs_sharp()
    # Identical models: every paired resample has diff exactly 0, so it crosses at the first k.
    same = crossover(rl, rl, 64, [1, 2, 4], n_boot=100, seed=1)
    np.testing.assert_array_equal(same.diff_low, 0.0)
    np.testing.assert_array_equal(same.diff_high, 0.0)
    assert same.k_star == 1 and same.p_exists == 1.0
    assert "smallest k=1" in same.note
    a = crossover(base, rl, 64, list(range(1, 65)), n_boot=100, seed=5)
    b = crossover(base, rl, 64, list(range(1, 65)), n_boot=100, seed=5)
    np.testing.assert_array_equal(a.k_star_boot, b.k_star_boot)
    assert (a.ci_low, a.ci_high) == (b.ci_low, b.ci_high)


def test_crossover_none_when_rl_dominates_everywhere():
    base = [0, 1, 0, 2]
    rl = [8, 8, 8, 8]
    # Below k=8 no base problem reaches pass@k = 1, so no resample can cross either.
    res = crossover(base, rl, 8, [1, 2, 4], n_boot=100, seed=0)
    assert res.k_star is None
    assert res.ci_low is None and res.ci_high is None
    assert res.p_exists == 0.0
    assert "no crossover" in res.note
    assert np.all(res.diff < 0)
    # With k=8 the problems base solves at all reach pass@8 = 1, so some resamples cross.
    wide = crossover(base, rl, 8, [1, 2, 4, 8], n_boot=200, seed=0)
    assert wide.k_star is None and 0.0 < wide.p_exists < 1.0 and wide.ci_low == 8


def test_crossover_refuses_unpaired_problems():
    with pytest.raises(ValueError, match="same problems in the same order"):
        crossover([1, 2, 3], [1, 2], 8, [1, 2], n_boot=10)


# ---------------------------------------------------------------- coverage


def test_coverage_split_hand_table():
    base = [3, 0, 1, 0, 5, 0]
    rl = [2, 4, 0, 0, 1, 0]
    split = coverage_split(base, rl)
    assert {k: v["count"] for k, v in split.items()} == {
        "both": 2,
        "base_only": 1,
        "rl_only": 1,
        "neither": 2,
    }
    assert split["both"]["share"] == pytest.approx(2 / 6)
    assert split["neither"]["share"] == pytest.approx(2 / 6)
    assert sum(v["share"] for v in split.values()) == pytest.approx(1.0)


def test_cover_at_thresholds():
    counts = [0, 3, 5, 10]
    assert cover_at(counts, 10, 0.3) == 0.75
    assert cover_at(counts, 10, 0.31) == 0.5
    assert cover_at(counts, 10, 1.0) == 0.25
    assert cover_at(counts, 10, 0.0) == 1.0
    with pytest.raises(ValueError, match="tau=1.2 must lie in"):
        cover_at(counts, 10, 1.2)


# ---------------------------------------------------------------- majority vote


def test_majority_at_k_deterministic_hand_cases():
    answers = [["a", "a", "b"], ["x", "y", "y"], [None, None, "7"], [None, None, None]]
    correct = ["a", "x", "7", "7"]
    # k = 3 uses every sample: a wins (right), y wins (wrong), 7 is the only vote (right),
    # no answer at all (wrong).
    assert majority_at_k(answers, correct, 3, n_boot=20) == pytest.approx(0.5)


def test_majority_at_k_random_draws_and_ties():
    # k=2 from [a, a, b]: {a,a} w.p. 1/3 -> right; {a,b} w.p. 2/3 -> tie -> right half the time.
    acc = majority_at_k([["a", "a", "b"]], ["a"], 2, n_boot=4000, seed=0)
    assert acc == pytest.approx(2 / 3, abs=0.03)
    # Full two-way tie at k=n: only the tie-break is random.
    tie = majority_at_k([["p", "q"]], ["p"], 2, n_boot=4000, seed=0)
    assert tie == pytest.approx(0.5, abs=0.03)
    # k=1 is the share of correct samples.
    assert majority_at_k([["a", "b", "b", "b"]], ["a"], 1, n_boot=4000) == pytest.approx(
        0.25, abs=0.03
    )
    assert majority_at_k([["a", "a", "b"]], ["a"], 2, n_boot=300, seed=4) == majority_at_k(
        [["a", "a", "b"]], ["a"], 2, n_boot=300, seed=4
    )


def test_majority_at_k_refuses_bad_input():
    with pytest.raises(ValueError, match="k=4 exceeds n=3 samples for problem 0"):
        majority_at_k([["a", "b", "c"]], ["a"], 4)
    with pytest.raises(ValueError, match="one reference answer per problem"):
        majority_at_k([["a"], ["b"]], ["a"], 1)
    with pytest.raises(ValueError, match=r"correct\[0\] is None"):
        majority_at_k([["a"]], [None], 1)


# ---------------------------------------------------------------- summaries


def test_sampling_efficiency_gap_from_curves_and_values():
    base, rl = broad_vs_sharp()
    base_curve = passk_curve(base, 64, [1, 8, 64], n_boot=10)
    rl_curve = passk_curve(rl, 64, [1, 8, 64], n_boot=10)
    assert sampling_efficiency_gap(base_curve, rl_curve) == pytest.approx(1.0 - 0.5)
    assert sampling_efficiency_gap(0.9, 0.6) == pytest.approx(0.3)
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\] \(a pass rate\)"):
        sampling_efficiency_gap(1.5, 0.2)


def test_correct_counts_per_problem():
    from types import SimpleNamespace

    class Task:  # correct when the completion names the problem; 0.5 is not enough
        def verify(self, problem, completion):
            return {problem: 1.0, "half": 0.5}.get(completion, 0.0)

    samples = SimpleNamespace(
        texts=["a", "b", "a", "half", "c", "c"], prompt_index=[0, 0, 0, 1, 2, 2]
    )
    c = correct_counts(Task(), ["a", "b", "c", "d"], samples)
    assert c.dtype.kind == "i" and c.tolist() == [2, 0, 2, 0]
    with pytest.raises(ValueError, match="outside the 2 problems"):
        correct_counts(Task(), ["a", "b"], samples)
    with pytest.raises(ValueError, match="6 texts but 2 prompt indices"):
        correct_counts(Task(), ["a"], SimpleNamespace(texts=samples.texts, prompt_index=[0, 0]))


def test_crossover_counts_equal_means_as_a_crossing_whatever_their_rounding():
    # both pass@1 are 0.4 exactly; summed in another order, floats differ in the last bit
    for base, rl in (([0, 8, 4], [5, 4, 3]), ([1, 6, 7, 9, 5], [7, 9, 5, 6, 1])):
        c = crossover(base, rl, n=10, ks=[1, 2, 3], n_boot=50)
        assert c.k_star == 1, (base, rl, c.diff)
