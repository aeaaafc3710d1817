"""Comparing two models' pass@k: where the base catches up (the crossover k*, with a
paired bootstrap over problems) and which problems each solves (coverage)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ...checks import probability
from .estimators import bootstrap_dist, pass_at_k_matrix, percentiles
from .inputs import check_ci, check_n_boot, check_seed, counts_and_n, int_array, ks_array

__all__ = ["Crossover", "cover_at", "coverage_split", "crossover"]


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


TIE = 1e-12  # pass@k values this close are equal (float rounding of equal means)


def _first_crossing(base: np.ndarray, rl: np.ndarray, ks: np.ndarray) -> np.ndarray:
    """Smallest k with base >= rl along the last axis (equal up to float rounding counts
    as >=: two means equal in exact arithmetic may differ in their last bits); -1 where none."""
    hit = base >= rl - TIE
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
    b, nb = counts_and_n(base_counts, n, "base_counts")
    r, nr = counts_and_n(rl_counts, n if n_rl is None else n_rl, "rl_counts")
    if b.size != r.size:
        raise ValueError(
            f"base_counts has {b.size} problems but rl_counts has {r.size}: pass counts for the "
            "same problems in the same order"
        )
    k = ks_array(ks, int(min(nb.min(), nr.min())), increasing=True)
    ci = check_ci(ci)
    n_boot = check_n_boot(n_boot)
    seed = check_seed(seed)
    mb = pass_at_k_matrix(b, nb, k)
    mr = pass_at_k_matrix(r, nr, k)
    base_mean, rl_mean = mb.mean(axis=0), mr.mean(axis=0)
    k_star_arr = _first_crossing(base_mean, rl_mean, k)
    k_star = int(k_star_arr) if k_star_arr >= 0 else None

    dist = bootstrap_dist(np.concatenate([mb, mr], axis=1), np.mean, n_boot, seed)
    boot_b, boot_r = dist[:, : k.size], dist[:, k.size :]
    diff_low, diff_high = percentiles(boot_b - boot_r, ci)
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
    b = int_array(base_counts, "base_counts") > 0
    r = int_array(rl_counts, "rl_counts") > 0
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
    c, n_arr = counts_and_n(counts, n)
    return float(np.mean(c / n_arr >= tau))
