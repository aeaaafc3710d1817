"""Router quality: does the router know *when*? Its firings against the ground truth.

Measured on the hybrid's own generations (the prefixes the base wrote under that
router), at every position where a label could begin: a positive is a position where
the task's ground-truth schedule fires the label. Per label: precision and recall of the
router's firings, and the AUROC of its score (its probability for the label; the binary
decision for routers without a score), with a bootstrap CI over generations.

The bootstrap's AUROCs are computed for all resamples at once
(:func:`probes.auroc.resampled_aurocs`), each resample given by the generations it drew.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from probes.auroc import resampled_aurocs

__all__ = ["router_quality", "quality_arrays"]


def quality_arrays(
    generations: Sequence[Any], label: Hashable
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(truth, fired, score, generation index)`` at every position where ``label`` could
    begin, from the per-step records of ``generations`` (``HybridGeneration.steps``)."""
    y, f, s, g = [], [], [], []
    for i, gen in enumerate(generations):
        for _, gt, fired, scores in gen.steps:
            if label in scores:
                y.append(gt == label)
                f.append(fired == label)
                s.append(scores[label])
                g.append(i)
    return np.array(y, bool), np.array(f, bool), np.array(s, float), np.array(g, int)


def _auroc(y: np.ndarray, s: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    if y.all() or not y.any():
        return None
    return float(roc_auc_score(y, s))


def router_quality(
    result: Any,
    labels: Sequence[Hashable] | None = None,
    *,
    n_boot: int = 200,
    seed: int = 0,
) -> dict[Hashable, dict[str, Any]]:
    """Precision, recall and AUROC (95% bootstrap CI over generations) per label.

    ``result`` is a :class:`HybridResult` from a decoder given a task with a ground-truth
    ``schedule``. Labels default to those the ground truth ever fires. A label without
    positives or negatives gets ``None`` where a number is undefined.
    """
    gens = result.generations
    if not any(g.steps for g in gens):
        raise ValueError(
            "no per-step records: router quality needs a decoder built with task= (a task "
            "with can_begin and a ground-truth schedule)"
        )
    if labels is None:
        labels = sorted({gt for g in gens for _, gt, _, _ in g.steps if gt is not None}, key=str)
    rng = np.random.default_rng(seed)
    out: dict[Hashable, dict[str, Any]] = {}
    for lab in labels:
        y, f, s, g = quality_arrays(gens, lab)
        tp = int((y & f).sum())
        rec: dict[str, Any] = {
            "n_eligible": int(len(y)),
            "n_positive": int(y.sum()),
            "n_fired": int(f.sum()),
            "precision": tp / int(f.sum()) if f.any() else None,
            "recall": tp / int(y.sum()) if y.any() else None,
            "auroc": _auroc(y, s),
            "auroc_ci": None,
        }
        if rec["auroc"] is not None and n_boot > 0:
            groups, group = np.unique(g, return_inverse=True)
            picks = [rng.choice(groups, size=len(groups), replace=True) for _ in range(n_boot)]
            a = resampled_aurocs(y, s, group, np.searchsorted(groups, picks))
            vals = a[~np.isnan(a)]  # a resample with one class has no AUROC
            if len(vals):
                rec["auroc_ci"] = [
                    float(np.percentile(vals, 2.5)),
                    float(np.percentile(vals, 97.5)),
                ]
        out[lab] = rec
    return out
