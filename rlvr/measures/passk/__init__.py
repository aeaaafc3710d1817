"""Exact pass@k measurement: unbiased estimator, bootstrap curves, crossover, coverage.

All estimators take per-problem correct-sample counts ``c`` out of ``n`` samples
(:func:`correct_counts` gives them from a task's verifier and the samples).
Bootstrap confidence intervals resample problems (not samples) with replacement.

One module a concern: :mod:`.inputs` (the argument checks), :mod:`.estimators` (counts,
pass@k, bootstrap, curves, majority vote), :mod:`.crossover` (crossover and coverage).
Every public name is importable from ``rlvr.measures.passk``.
"""

from __future__ import annotations

from .crossover import Crossover, cover_at, coverage_split, crossover
from .estimators import (
    PassKCurve,
    bootstrap_ci,
    correct_counts,
    majority_at_k,
    pass_at_k,
    pass_at_k_matrix,
    passk_curve,
    sampling_efficiency_gap,
)

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
