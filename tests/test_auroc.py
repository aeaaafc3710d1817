"""AUROC over many bootstrap resamples at once, against scikit-learn resample by resample."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from probes.auroc import resampled_aurocs
from probes.probe import _boot_auc


def _one_class(y) -> bool:
    return bool(y.all() or not y.any())


def test_resampled_aurocs_equal_sklearn_with_ties():
    rng = np.random.default_rng(0)
    for trial in range(20):
        n, n_groups = int(rng.integers(2, 200)), int(rng.integers(1, 12))
        group = rng.integers(0, n_groups, n)
        y = rng.random(n) < rng.uniform(0.1, 0.9)
        # few distinct scores: many ties, within and across classes (half the trials)
        s = rng.integers(0, 5, n) / 4 if trial % 2 else rng.random(n)
        picks = rng.integers(0, n_groups, (40, n_groups))
        got = resampled_aurocs(y, s, group, picks)
        for b, pick in enumerate(picks):
            idx = np.concatenate([np.flatnonzero(group == k) for k in pick])
            if _one_class(y[idx]):
                assert np.isnan(got[b])
            else:
                assert abs(got[b] - roc_auc_score(y[idx], s[idx])) <= 1e-12


def _boot_auc_one_by_one(y, s, n_boot, rng, ci):
    """The layer sweep's CI as a loop of scikit-learn calls, one per resample."""
    vals = []
    for _ in range(n_boot):
        i = rng.integers(0, len(y), len(y))
        if len(np.unique(y[i])) > 1:
            vals.append(roc_auc_score(y[i], s[i]))
    if not vals:
        return float("nan"), float("nan")
    a = (1 - ci) / 2
    return float(np.quantile(vals, a)), float(np.quantile(vals, 1 - a))


def test_the_sweep_bootstrap_equals_sklearn_per_resample():
    rng = np.random.default_rng(1)
    for n in (3, 8, 31, 200, 501):  # odd sizes too: the draws must stay the same
        y = (rng.random(n) < 0.25).astype(int)
        s = np.round(rng.normal(size=n), 1)  # ties
        want = _boot_auc_one_by_one(y, s, 150, np.random.default_rng(n), 0.9)
        got = _boot_auc(y, s, np.arange(n), 150, np.random.default_rng(n), 0.9)  # a row a trace
        np.testing.assert_allclose(got, want, atol=1e-12)
    y1 = np.array([1, 0])  # every resample of two positions: often one class, sometimes not
    got = _boot_auc(y1, np.array([0.2, 0.1]), np.arange(2), 50, np.random.default_rng(0), 0.9)
    assert got == _boot_auc_one_by_one(y1, np.array([0.2, 0.1]), 50, np.random.default_rng(0), 0.9)
    only = _boot_auc(
        np.ones(5, int), np.arange(5.0), np.arange(5), 20, np.random.default_rng(0), 0.9
    )
    assert np.isnan(only).all()


def test_the_sweep_bootstrap_resamples_whole_traces():
    """Each trace's rows twice over: resampled as traces, the CI is that of the traces alone
    (duplicated rows add no information); resampled as rows it would be narrower."""
    rng = np.random.default_rng(3)
    y = (rng.random(40) < 0.5).astype(int)
    s = y + rng.normal(size=40) * 1.5
    traces = np.arange(40)
    alone = _boot_auc(y, s, traces, 400, np.random.default_rng(0), 0.9)
    twice = _boot_auc(
        np.r_[y, y], np.r_[s, s], np.r_[traces, traces], 400, np.random.default_rng(0), 0.9
    )
    as_rows = _boot_auc(np.r_[y, y], np.r_[s, s], np.arange(80), 400, np.random.default_rng(0), 0.9)
    np.testing.assert_allclose(twice, alone, atol=1e-12)
    assert as_rows[1] - as_rows[0] < 0.85 * (alone[1] - alone[0])
