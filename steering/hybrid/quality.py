"""Router quality: does the router know *when*? Its firings against the ground truth.

Measured on the hybrid's own generations (the prefixes the base wrote under that
router), at every position where a label could begin: a positive is a position where
the task's ground-truth schedule fires the label. Per label: precision and recall of the
router's firings, and the AUROC of its score (its probability for the label; the binary
decision for routers without a score), with a bootstrap CI over generations.

The bootstrap's AUROCs are computed for all resamples at once from mid-ranks (Mann-Whitney
U), each resample given by how often it drew each generation: the same number scikit-learn's
``roc_auc_score`` gives (up to float rounding), without its input checks per resample.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

__all__ = ["router_quality", "quality_arrays", "resampled_aurocs"]

_CHUNK = 1 << 22  # (resamples x positions) held at once by resampled_aurocs


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


def resampled_aurocs(
    y: np.ndarray, s: np.ndarray, group: np.ndarray, picks: np.ndarray
) -> np.ndarray:
    """The AUROC of each resample of whole groups, NaN where a resample holds one class.

    ``y`` (bool) and ``s`` are the positions' truth and score, ``group[i]`` the index
    (``0 .. n_groups-1``) of position ``i``'s group, and ``picks[b]`` the group indices
    resample ``b`` drew (with repeats): the AUROC of ``y[idx], s[idx]`` with ``idx`` the
    positions of the picked groups one after another. Computed as the Mann-Whitney U of the
    positives' mid-ranks, each position weighted by how often its group was drawn.
    """
    y, s = np.asarray(y, bool), np.asarray(s, float)
    group, picks = np.asarray(group, np.intp), np.asarray(picks, np.intp)
    if picks.ndim != 2:
        raise ValueError(f"picks must be 2-D (resamples, groups drawn), got shape {picks.shape}")
    out = np.full(len(picks), np.nan)
    if not len(s):
        return out
    n_groups = int(max(group.max(), picks.max(initial=-1))) + 1
    order = np.argsort(s, kind="stable")
    s, y, group = s[order], y[order], group[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])  # the runs of tied scores
    step = max(1, _CHUNK // len(s))
    for lo in range(0, len(picks), step):
        p = picks[lo : lo + step]
        b = len(p)
        drawn = np.bincount(
            (np.arange(b)[:, None] * n_groups + p).ravel(), minlength=b * n_groups
        ).reshape(b, n_groups)
        w = drawn[:, group].astype(float)  # how often each position is in each resample
        tied = np.add.reduceat(w, starts, axis=1)
        tied_pos = np.add.reduceat(w * y, starts, axis=1)
        mid = np.cumsum(tied, axis=1) - tied + (tied + 1) / 2  # the run's mid-rank
        n_pos = tied_pos.sum(1)
        n_neg = tied.sum(1) - n_pos
        u = (tied_pos * mid).sum(1) - n_pos * (n_pos + 1) / 2
        ok = (n_pos > 0) & (n_neg > 0)
        out[lo : lo + b][ok] = u[ok] / (n_pos[ok] * n_neg[ok])
    return out


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
