"""AUROC for many bootstrap resamples at once, from mid-ranks (Mann-Whitney U).

The same number scikit-learn's ``roc_auc_score`` gives for each resample (up to float
rounding), without its input checks per resample, which otherwise dominate a bootstrap of
thousands of small AUROCs. The layer sweep (resampling positions) and router quality
(resampling whole generations) both use it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["resampled_aurocs"]

_CHUNK = 1 << 22  # (resamples x positions) held at once


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
    if not np.isfinite(s).all():
        raise ValueError("scores hold NaN or inf: an AUROC needs finite scores")
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
