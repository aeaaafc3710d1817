"""Gap recovered by the hybrid: (acc_hybrid - acc_base) / (acc_rl - acc_base), with a CI.

Accuracies are *per problem* (the share of a problem's samples that verify, or 0/1), one
entry per problem in the same order for all three models, so the bootstrap resamples
problems and keeps the three paired. The ratio is undefined when the RL model is no
better than the base, so :func:`recovery` refuses when ``|acc_rl - acc_base|`` is below
``min_gap`` instead of reporting a meaningless (or huge) number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["Recovery", "recovery", "recovery_difference"]


@dataclass(frozen=True)
class Recovery:
    """Point estimate and paired bootstrap interval of the recovered gap.

    ``value``: recovery on all problems; ``ci``: percentile interval at ``level`` over
    bootstrap resamples of problems; ``gap``/``gap_ci``: ``acc_rl - acc_base`` and its
    interval; ``n_degenerate``: resamples left out because their gap was exactly zero.
    """

    value: float
    ci: tuple[float, float]
    acc_hybrid: float
    acc_base: float
    acc_rl: float
    gap: float
    gap_ci: tuple[float, float]
    n_problems: int
    n_boot: int
    level: float
    seed: int
    n_degenerate: int

    @property
    def gap_is_clear(self) -> bool:
        """Whether the gap's interval excludes 0 (if not, read the recovery CI with care)."""
        lo, hi = self.gap_ci
        return lo > 0 or hi < 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _per_problem(x: Any, what: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 2:  # problems x samples of 0/1 (or scores): the per-problem mean
        a = a.mean(axis=1)
    if a.ndim != 1:
        raise ValueError(
            f"{what} must hold one accuracy per problem (1-D), or problems x samples (2-D); "
            f"got shape {a.shape}"
        )
    if a.size == 0:
        raise ValueError(f"{what} is empty: give one accuracy per problem")
    if not np.isfinite(a).all():
        raise ValueError(f"{what} has NaN/inf entries")
    if (a < 0).any() or (a > 1).any():
        raise ValueError(f"{what} must be accuracies in [0, 1] (share of samples correct)")
    return a


def recovery(
    acc_hybrid: Sequence[float] | np.ndarray,
    acc_base: Sequence[float] | np.ndarray,
    acc_rl: Sequence[float] | np.ndarray,
    *,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
    min_gap: float = 0.02,
) -> Recovery:
    """Recovered gap ``(hyb - base) / (rl - base)`` with a paired bootstrap CI over problems.

    Refuses (``ValueError``) unless the RL model's mean accuracy exceeds the base's by at
    least ``min_gap``: otherwise there is no gain to recover. 1.0 means the hybrid matches the RL model, 0 the
    base; values outside [0, 1] are possible and reported as they are.
    """
    h = _per_problem(acc_hybrid, "acc_hybrid")
    b = _per_problem(acc_base, "acc_base")
    r = _per_problem(acc_rl, "acc_rl")
    if not (h.shape == b.shape == r.shape):
        raise ValueError(
            f"the three accuracies must cover the same problems in the same order; got "
            f"{h.size} (hybrid), {b.size} (base), {r.size} (rl) problems"
        )
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive int, got {n_boot!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), e.g. 0.95; got {level!r}")
    if min_gap < 0:
        raise ValueError(f"min_gap must be >= 0, got {min_gap!r}")
    mh, mb, mr = float(h.mean()), float(b.mean()), float(r.mean())
    gap = mr - mb
    if gap < max(min_gap, 1e-12):
        raise ValueError(
            f"acc_rl ({mr:.4f}) exceeds acc_base ({mb:.4f}) by {gap:+.4f}, less than "
            f"min_gap={min_gap}: there is no RL gain for the hybrid to recover, and the ratio "
            "would be noise (or have the wrong sign). Use problems where the RL model beats "
            "the base (or more of them), or lower min_gap if this gap is real."
        )
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, h.size, size=(n_boot, h.size))
    bh, bb, br = h[idx].mean(1), b[idx].mean(1), r[idx].mean(1)
    bgap = br - bb
    ok = np.abs(bgap) > 1e-12
    ratios = (bh[ok] - bb[ok]) / bgap[ok]
    alpha = (1 - level) / 2
    if ratios.size:
        lo, hi = np.quantile(ratios, [alpha, 1 - alpha])
    else:
        lo = hi = float("nan")
    glo, ghi = np.quantile(bgap, [alpha, 1 - alpha])
    return Recovery(
        value=(mh - mb) / gap,
        ci=(float(lo), float(hi)),
        acc_hybrid=mh,
        acc_base=mb,
        acc_rl=mr,
        gap=gap,
        gap_ci=(float(glo), float(ghi)),
        n_problems=int(h.size),
        n_boot=n_boot,
        level=level,
        seed=seed,
        n_degenerate=int((~ok).sum()),
    )


def recovery_difference(
    acc_a: Sequence[float] | np.ndarray,
    acc_b: Sequence[float] | np.ndarray,
    acc_base: Sequence[float] | np.ndarray,
    acc_rl: Sequence[float] | np.ndarray,
    *,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
    min_gap: float = 0.02,
) -> tuple[float, tuple[float, float]]:
    """Recovery of ``a`` minus recovery of ``b`` on the same problems, with a paired
    bootstrap CI over problems (e.g. a router against its random-timing control). The gap
    must be one :func:`recovery` accepts with the same ``min_gap``."""
    a, b = _per_problem(acc_a, "acc_a"), _per_problem(acc_b, "acc_b")
    base, rl = _per_problem(acc_base, "acc_base"), _per_problem(acc_rl, "acc_rl")
    if not (a.shape == b.shape == base.shape == rl.shape):
        raise ValueError("the four accuracies must cover the same problems in the same order")
    if min_gap < 0:
        raise ValueError(f"min_gap must be >= 0, got {min_gap!r}")
    gap = float(rl.mean() - base.mean())
    if gap < max(min_gap, 1e-12):
        raise ValueError(
            f"acc_rl exceeds acc_base by {gap:+.4f}, less than min_gap={min_gap}: there is no "
            "RL gain to compare recoveries on (recovery refuses this gap too)"
        )
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, a.size, size=(n_boot, a.size))
    bgap = rl[idx].mean(1) - base[idx].mean(1)
    ok = np.abs(bgap) > 1e-12
    d = (a[idx].mean(1) - b[idx].mean(1))[ok] / bgap[ok]
    alpha = (1 - level) / 2
    lo, hi = np.quantile(d, [alpha, 1 - alpha]) if d.size else (float("nan"), float("nan"))
    return float((a.mean() - b.mean()) / gap), (float(lo), float(hi))
