"""Exact pass@k measurement: unbiased estimator, bootstrap curves, crossover, coverage.

All estimators take per-problem correct-sample counts ``c`` out of ``n`` samples
(:func:`correct_counts` gives them from a task's verifier and the samples).
Bootstrap confidence intervals resample problems (not samples) with replacement.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .checks import probability

__all__ = [
    "Crossover",
    "PassKCurve",
    "bootstrap_ci",
    "correct_counts",
    "cover_at",
    "coverage_split",
    "crossover",
    "majority_at_k",
    "pass_at_k",
    "pass_at_k_matrix",
    "passk_curve",
    "sampling_efficiency_gap",
]

_BOOT_CHUNK_CELLS = 4_000_000  # max resample cells materialised at once


# ----------------------------------------------------------------------------- validation


def _as_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    return int(value)


def _check_seed(seed: object) -> int:
    seed = _as_int(seed, "seed")
    if seed < 0:
        raise ValueError(f"seed={seed} is negative: pass a non-negative integer seed")
    return seed


def _check_n_boot(n_boot: object) -> int:
    n_boot = _as_int(n_boot, "n_boot")
    if n_boot < 1:
        raise ValueError(f"n_boot={n_boot} must be at least 1: pass e.g. n_boot=1000")
    return n_boot


def _check_ci(ci: object) -> float:
    if isinstance(ci, bool) or not isinstance(ci, int | float | np.floating):
        raise TypeError(f"ci must be a float in (0, 1), got {type(ci).__name__} {ci!r}")
    if not 0.0 < float(ci) < 1.0:
        raise ValueError(f"ci={ci} must lie strictly between 0 and 1: pass e.g. ci=0.95")
    return float(ci)


def _int_array(values: object, name: str) -> np.ndarray:
    """1-D integer array from a sequence of integer-valued numbers."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one entry per problem), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty: pass at least one problem")
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"{name} must hold integer counts, got dtype {arr.dtype}")
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ValueError(f"{name} must hold whole numbers: round or cast counts to int")
    arr = arr.astype(np.int64)
    if np.any(arr < 0):
        i = int(np.argmax(arr < 0))
        raise ValueError(f"{name}[{i}]={arr[i]} is negative: counts must be >= 0")
    return arr


def _counts_and_n(counts: object, n: object, name: str = "counts") -> tuple[np.ndarray, np.ndarray]:
    c = _int_array(counts, name)
    if isinstance(n, int | np.integer) and not isinstance(n, bool):
        n_arr = np.full(c.shape, int(n), dtype=np.int64)
    else:
        n_arr = _int_array(n, "n")
        if n_arr.shape != c.shape:
            raise ValueError(
                f"n has {n_arr.size} entries but {name} has {c.size}: pass one sample count "
                "per problem or a single int"
            )
    if np.any(n_arr < 1):
        i = int(np.argmax(n_arr < 1))
        raise ValueError(f"n={n_arr[i]} for problem {i}: each problem needs at least one sample")
    if np.any(c > n_arr):
        i = int(np.argmax(c > n_arr))
        raise ValueError(
            f"{name}[{i}]={c[i]} exceeds n={n_arr[i]} samples: a problem cannot have more "
            "correct samples than samples drawn"
        )
    return c, n_arr


def _ks_array(ks: object, n_min: int, *, increasing: bool) -> np.ndarray:
    if isinstance(ks, int | np.integer) and not isinstance(ks, bool):
        ks = [ks]
    k = _int_array(ks, "ks")
    if np.any(k < 1):
        raise ValueError(f"ks contains {int(k[k < 1][0])}: every k must be >= 1")
    if np.any(k > n_min):
        bad = int(k[k > n_min][0])
        raise ValueError(
            f"k={bad} exceeds n={n_min} samples: draw at least k samples per problem or drop k"
        )
    if increasing and np.any(np.diff(k) <= 0):
        raise ValueError(f"ks={k.tolist()} must be strictly increasing: sort them and drop repeats")
    return k


# ----------------------------------------------------------------------------- counts


def correct_counts(task: Any, problems: Sequence[Any], samples: Any) -> np.ndarray:
    """Per-problem correct counts ``c`` (int array, one per problem) of sampled completions.

    ``samples`` gives ``texts`` and ``prompt_index`` into ``problems`` (``Samples`` from
    :func:`rlvr.sampling.sample`, or a hybrid result); ``task.verify(problem, completion)``
    scores each completion, and a reward above 0.5 counts as correct.
    """
    texts, index = list(samples.texts), list(samples.prompt_index)
    if len(texts) != len(index):
        raise ValueError(
            f"samples hold {len(texts)} texts but {len(index)} prompt indices: give one per row"
        )
    c = np.zeros(len(problems), dtype=int)
    for i, text in zip(index, texts):
        if not 0 <= i < len(problems):
            raise ValueError(
                f"prompt index {i} is outside the {len(problems)} problems: pass the problems "
                "the samples were drawn for"
            )
        c[i] += int(task.verify(problems[i], text) > 0.5)
    return c


# ----------------------------------------------------------------------------- estimator


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of Chen et al. (2021): ``1 - C(n-c, k) / C(n, k)``.

    Uses the stable product form ``1 - prod(1 - k / arange(n - c + 1, n + 1))``.
    """
    n = _as_int(n, "n")
    c = _as_int(c, "c")
    k = _as_int(k, "k")
    if n < 0 or c < 0:
        raise ValueError(f"n={n}, c={c}: sample counts must be non-negative")
    if k < 1:
        raise ValueError(f"k={k} must be at least 1")
    if c > n:
        raise ValueError(
            f"c={c} exceeds n={n} samples: a problem cannot have more correct samples than drawn"
        )
    if k > n:
        raise ValueError(
            f"k={k} exceeds n={n} samples: draw at least k samples per problem or drop k"
        )
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1, dtype=np.float64)))


def pass_at_k_matrix(
    counts: Sequence[int] | np.ndarray,
    n: int | Sequence[int] | np.ndarray,
    ks: Sequence[int] | np.ndarray,
) -> np.ndarray:
    """pass@k per problem and k, shape ``(problems, len(ks))``.

    ``n`` is one sample count for all problems or one per problem.
    """
    c, n_arr = _counts_and_n(counts, n)
    k = _ks_array(ks, int(n_arr.min()), increasing=False)
    out = np.empty((c.size, k.size), dtype=np.float64)
    pairs, inverse = np.unique(np.stack([n_arr, c], axis=1), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    for j, kj in enumerate(k):
        vals = np.array([pass_at_k(int(ni), int(ci), int(kj)) for ni, ci in pairs])
        out[:, j] = vals[inverse]
    return out


# ----------------------------------------------------------------------------- bootstrap


def _bootstrap_dist(
    values: np.ndarray, stat: Callable[..., np.ndarray], n_boot: int, seed: int
) -> np.ndarray:
    """Statistic over ``n_boot`` resamples of axis 0; shape ``(n_boot, *stat_shape)``."""
    rng = np.random.default_rng(seed)
    n_items = values.shape[0]
    idx = rng.integers(0, n_items, size=(n_boot, n_items))
    per_row = max(1, int(np.prod(values.shape)))
    chunk = max(1, _BOOT_CHUNK_CELLS // per_row)
    parts = [np.asarray(stat(values[idx[s : s + chunk]], axis=1)) for s in range(0, n_boot, chunk)]
    return np.concatenate(parts, axis=0)


def _percentiles(dist: np.ndarray, ci: float) -> tuple[np.ndarray, np.ndarray]:
    alpha = (1.0 - ci) / 2.0
    low = np.percentile(dist, 100.0 * alpha, axis=0)
    high = np.percentile(dist, 100.0 * (1.0 - alpha), axis=0)
    return low, high


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    stat: Callable[..., np.ndarray] = np.mean,
    n_boot: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
) -> tuple[float | np.ndarray, float | np.ndarray]:
    """Percentile bootstrap CI of ``stat`` over items on axis 0 of ``values``.

    ``stat`` is a numpy-style reduction called as ``stat(sample, axis=...)`` (``np.mean``,
    ``np.median``). For 1-D ``values`` returns two floats; for 2-D, two arrays (one per column).
    """
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim not in (1, 2):
        raise ValueError(f"values must be 1-D or 2-D (items on axis 0), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError("values is empty: pass at least one item to bootstrap")
    if not callable(stat):
        raise TypeError(f"stat must be callable like np.mean, got {type(stat).__name__}")
    dist = _bootstrap_dist(arr, stat, _check_n_boot(n_boot), _check_seed(seed))
    low, high = _percentiles(dist, _check_ci(ci))
    if arr.ndim == 1:
        return float(low), float(high)
    return low, high


# ----------------------------------------------------------------------------- curves


@dataclass(frozen=True)
class PassKCurve:
    """Mean pass@k over problems with a bootstrap CI (problems resampled)."""

    ks: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    n_problems: int
    n_samples: int | np.ndarray  # int when every problem has the same sample count
    ci: float = 0.95
    n_boot: int = 1000
    seed: int = 0

    def at(self, k: int) -> float:
        """Mean pass@k at one of the curve's ks."""
        hits = np.flatnonzero(self.ks == k)
        if hits.size == 0:
            raise ValueError(f"k={k} is not on this curve (ks={self.ks.tolist()}): add it to ks")
        return float(self.mean[hits[0]])


def _n_summary(n_arr: np.ndarray) -> int | np.ndarray:
    return int(n_arr[0]) if np.all(n_arr == n_arr[0]) else n_arr.copy()


def passk_curve(
    counts: Sequence[int] | np.ndarray,
    n: int | Sequence[int] | np.ndarray,
    ks: Sequence[int] | np.ndarray,
    n_boot: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
) -> PassKCurve:
    """Mean pass@k at each k (strictly increasing) with a bootstrap CI over problems."""
    c, n_arr = _counts_and_n(counts, n)
    k = _ks_array(ks, int(n_arr.min()), increasing=True)
    mat = pass_at_k_matrix(c, n_arr, k)
    low, high = bootstrap_ci(mat, np.mean, n_boot=n_boot, seed=seed, ci=ci)
    return PassKCurve(
        ks=k,
        mean=mat.mean(axis=0),
        low=np.asarray(low),
        high=np.asarray(high),
        n_problems=int(c.size),
        n_samples=_n_summary(n_arr),
        ci=float(ci),
        n_boot=int(n_boot),
        seed=int(seed),
    )


@dataclass(frozen=True)
class Crossover:
    """Where base pass@k catches up with RL pass@k, with a paired bootstrap over problems.

    ``diff`` is base minus RL mean pass@k per k. ``k_star_boot`` holds k* per resample
    (-1 where that resample has no crossover).
    """

    ks: np.ndarray
    base_mean: np.ndarray
    rl_mean: np.ndarray
    diff: np.ndarray
    diff_low: np.ndarray
    diff_high: np.ndarray
    k_star: int | None
    ci_low: int | None
    ci_high: int | None
    p_exists: float
    n_problems: int
    note: str
    k_star_boot: np.ndarray = field(repr=False)
    ci: float = 0.95
    n_boot: int = 1000
    seed: int = 0


def _first_crossing(base: np.ndarray, rl: np.ndarray, ks: np.ndarray) -> np.ndarray:
    """Smallest k with base >= rl along the last axis; -1 where none."""
    hit = base >= rl
    first = np.argmax(hit, axis=-1)
    return np.where(hit.any(axis=-1), ks[first], -1)


def crossover(
    base_counts: Sequence[int] | np.ndarray,
    rl_counts: Sequence[int] | np.ndarray,
    n: int | Sequence[int] | np.ndarray,
    ks: Sequence[int] | np.ndarray,
    n_boot: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
    n_rl: int | Sequence[int] | np.ndarray | None = None,
) -> Crossover:
    """Smallest k (in strictly increasing ``ks``) where mean base pass@k >= mean RL pass@k.

    Both count arrays index the same problems in the same order. ``n`` is the sample count
    (``n_rl`` overrides it for the RL model). The bootstrap resamples problem indices once per
    replicate and applies them to both models.
    """
    b, nb = _counts_and_n(base_counts, n, "base_counts")
    r, nr = _counts_and_n(rl_counts, n if n_rl is None else n_rl, "rl_counts")
    if b.size != r.size:
        raise ValueError(
            f"base_counts has {b.size} problems but rl_counts has {r.size}: pass counts for the "
            "same problems in the same order"
        )
    k = _ks_array(ks, int(min(nb.min(), nr.min())), increasing=True)
    ci = _check_ci(ci)
    n_boot = _check_n_boot(n_boot)
    seed = _check_seed(seed)
    mb = pass_at_k_matrix(b, nb, k)
    mr = pass_at_k_matrix(r, nr, k)
    base_mean, rl_mean = mb.mean(axis=0), mr.mean(axis=0)
    k_star_arr = _first_crossing(base_mean, rl_mean, k)
    k_star = int(k_star_arr) if k_star_arr >= 0 else None

    dist = _bootstrap_dist(np.concatenate([mb, mr], axis=1), np.mean, n_boot, seed)
    boot_b, boot_r = dist[:, : k.size], dist[:, k.size :]
    diff_low, diff_high = _percentiles(boot_b - boot_r, ci)
    k_boot = _first_crossing(boot_b, boot_r, k)
    exists = k_boot >= 0
    p_exists = float(exists.mean())
    if exists.any():
        alpha = 100.0 * (1.0 - ci) / 2.0
        found = k_boot[exists]
        ci_low = int(np.percentile(found, alpha, method="inverted_cdf"))
        ci_high = int(np.percentile(found, 100.0 - alpha, method="inverted_cdf"))
    else:
        ci_low = ci_high = None

    if k_star is None:
        note = (
            f"no crossover: RL pass@k exceeds base pass@k at every k up to {int(k[-1])}; "
            f"{p_exists:.1%} of resamples cross"
        )
    elif k_star == int(k[0]):
        note = f"base already matches or beats RL at the smallest k={k_star}"
    else:
        note = f"base pass@k reaches RL pass@k at k={k_star}"
    return Crossover(
        ks=k,
        base_mean=base_mean,
        rl_mean=rl_mean,
        diff=base_mean - rl_mean,
        diff_low=np.asarray(diff_low),
        diff_high=np.asarray(diff_high),
        k_star=k_star,
        ci_low=ci_low,
        ci_high=ci_high,
        p_exists=p_exists,
        n_problems=int(b.size),
        note=note,
        k_star_boot=k_boot,
        ci=ci,
        n_boot=n_boot,
        seed=seed,
    )


# ----------------------------------------------------------------------------- coverage


def coverage_split(
    base_counts: Sequence[int] | np.ndarray, rl_counts: Sequence[int] | np.ndarray
) -> dict[str, dict[str, float]]:
    """Problems solved (c > 0) by both, base only, RL only, or neither.

    Returns ``{key: {"count": int, "share": float}}`` for keys both/base_only/rl_only/neither.
    """
    b = _int_array(base_counts, "base_counts") > 0
    r = _int_array(rl_counts, "rl_counts") > 0
    if b.size != r.size:
        raise ValueError(
            f"base_counts has {b.size} problems but rl_counts has {r.size}: pass counts for the "
            "same problems in the same order"
        )
    groups = {
        "both": b & r,
        "base_only": b & ~r,
        "rl_only": ~b & r,
        "neither": ~b & ~r,
    }
    return {
        key: {"count": int(mask.sum()), "share": float(mask.mean())} for key, mask in groups.items()
    }


def cover_at(
    counts: Sequence[int] | np.ndarray, n: int | Sequence[int] | np.ndarray, tau: float
) -> float:
    """Share of problems whose solve rate ``c / n`` is at least ``tau``."""
    tau = probability(tau, "tau", "a per-problem solve-rate threshold")
    c, n_arr = _counts_and_n(counts, n)
    return float(np.mean(c / n_arr >= tau))


# ----------------------------------------------------------------------------- majority vote


def majority_at_k(
    answers: Sequence[Sequence[Hashable | None]],
    correct: Sequence[Hashable],
    k: int,
    n_boot: int = 100,
    seed: int = 0,
) -> float:
    """Mean accuracy of a majority vote over ``k`` samples drawn without replacement.

    ``answers[i]`` holds the extracted answers of problem ``i`` (``None`` = no answer, which
    does not vote); ``correct[i]`` is its reference answer. Each problem is scored over
    ``n_boot`` random draws; ties between top answers are broken uniformly at random. A draw
    with no answers at all counts as wrong.
    """
    k = _as_int(k, "k")
    n_boot = _check_n_boot(n_boot)
    rng = np.random.default_rng(_check_seed(seed))
    if isinstance(answers, str | bytes) or not isinstance(answers, Sequence):
        raise TypeError("answers must be a list (per problem) of lists of extracted answers")
    if len(answers) == 0:
        raise ValueError("answers is empty: pass at least one problem")
    if len(correct) != len(answers):
        raise ValueError(
            f"answers has {len(answers)} problems but correct has {len(correct)}: pass one "
            "reference answer per problem"
        )
    if k < 1:
        raise ValueError(f"k={k} must be at least 1")
    accs = np.empty(len(answers), dtype=np.float64)
    for i, (samples, ref) in enumerate(zip(answers, correct)):
        if isinstance(samples, str | bytes) or not isinstance(samples, Sequence):
            raise TypeError(f"answers[{i}] must be a list of answers, got {type(samples).__name__}")
        if ref is None:
            raise ValueError(f"correct[{i}] is None: every problem needs a reference answer")
        m = len(samples)
        if k > m:
            raise ValueError(
                f"k={k} exceeds n={m} samples for problem {i}: draw at least k samples per "
                "problem or drop k"
            )
        vocab: dict[Hashable, int] = {}
        codes = np.array(
            [-1 if a is None else vocab.setdefault(a, len(vocab)) for a in samples],
            dtype=np.int64,
        )
        ref_code = vocab.get(ref, -2)
        if not vocab or ref_code < 0:
            accs[i] = 0.0
            continue
        draws = np.argsort(rng.random((n_boot, m)), axis=1)[:, :k]
        picked = codes[draws]
        votes = np.zeros((n_boot, len(vocab)), dtype=np.int64)
        rows = np.broadcast_to(np.arange(n_boot)[:, None], picked.shape)
        valid = picked >= 0
        np.add.at(votes, (rows[valid], picked[valid]), 1)
        top = votes.max(axis=1, keepdims=True)
        tied = (votes == top) & (top > 0)
        tiebreak = np.where(tied, rng.random(votes.shape), -1.0)
        winner = np.where(top[:, 0] > 0, np.argmax(tiebreak, axis=1), -1)
        accs[i] = float(np.mean(winner == ref_code))
    return float(accs.mean())


# ----------------------------------------------------------------------------- summaries


def sampling_efficiency_gap(
    base_curve_or_value: PassKCurve | float, rl_pass1: PassKCurve | float
) -> float:
    """Base pass@k at its largest k minus RL pass@1.

    Pass a :class:`PassKCurve` (its last k is used for the base, k=1 for RL) or plain values.
    """
    if isinstance(base_curve_or_value, PassKCurve):
        base = float(base_curve_or_value.mean[-1])
    else:
        base = _check_rate(base_curve_or_value, "base_curve_or_value")
    if isinstance(rl_pass1, PassKCurve):
        rl = rl_pass1.at(1)
    else:
        rl = _check_rate(rl_pass1, "rl_pass1")
    return base - rl


def _check_rate(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating):
        raise TypeError(f"{name} must be a PassKCurve or a float, got {type(value).__name__}")
    return probability(value, name, "a pass rate")
