"""Per-problem correct counts and the estimators built on them: unbiased pass@k, the
problem bootstrap, pass@k curves with CIs, majority vote at k, the sampling-efficiency gap."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .inputs import (
    as_int,
    check_ci,
    check_n_boot,
    check_rate,
    check_seed,
    counts_and_n,
    ks_array,
)

__all__ = [
    "PassKCurve",
    "bootstrap_ci",
    "bootstrap_dist",
    "correct_counts",
    "majority_at_k",
    "pass_at_k",
    "pass_at_k_matrix",
    "passk_curve",
    "percentiles",
    "sampling_efficiency_gap",
]

_BOOT_CHUNK_CELLS = 4_000_000  # max resample cells materialised at once


# ----------------------------------------------------------------------------- counts


def correct_counts(task: Any, problems: Sequence[Any], samples: Any) -> np.ndarray:
    """Per-problem correct counts ``c`` (int array, one per problem) of sampled completions.

    ``samples`` gives ``texts`` and ``prompt_index`` into ``problems`` (``Samples`` from
    :func:`rlvr.generation.sampling.sample`, or a hybrid result); ``task.verify(problem, completion)``
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
    n = as_int(n, "n")
    c = as_int(c, "c")
    k = as_int(k, "k")
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
    c, n_arr = counts_and_n(counts, n)
    k = ks_array(ks, int(n_arr.min()), increasing=False)
    out = np.empty((c.size, k.size), dtype=np.float64)
    pairs, inverse = np.unique(np.stack([n_arr, c], axis=1), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    for j, kj in enumerate(k):
        vals = np.array([pass_at_k(int(ni), int(ci), int(kj)) for ni, ci in pairs])
        out[:, j] = vals[inverse]
    return out


# ----------------------------------------------------------------------------- bootstrap


def bootstrap_dist(
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


def percentiles(dist: np.ndarray, ci: float) -> tuple[np.ndarray, np.ndarray]:
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
    dist = bootstrap_dist(arr, stat, check_n_boot(n_boot), check_seed(seed))
    low, high = percentiles(dist, check_ci(ci))
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
    c, n_arr = counts_and_n(counts, n)
    k = ks_array(ks, int(n_arr.min()), increasing=True)
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
    k = as_int(k, "k")
    n_boot = check_n_boot(n_boot)
    rng = np.random.default_rng(check_seed(seed))
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
        base = check_rate(base_curve_or_value, "base_curve_or_value")
    if isinstance(rl_pass1, PassKCurve):
        rl = rl_pass1.at(1)
    else:
        rl = check_rate(rl_pass1, "rl_pass1")
    return base - rl
