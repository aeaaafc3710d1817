"""Fitting steering vectors from an ActivationTable.

- :func:`fit_diffmean` — mean of the label's rows minus a named baseline: ``"rest"``
  (the REST rows: rest-of-trace positions), ``"all"`` (the mean over every *other*
  labelled row, REST excluded), or another label's name. ``norm_match=True`` rescales the
  vector to the norm of the label's mean activation, as in arXiv 2506.18167.
- :func:`fit_pca` — first principal direction of *paired* differences (each label row
  minus the baseline mean of the same trace), sign-aligned with the mean difference.
- :func:`fit_logistic` — the weight direction of a logistic-regression probe, scaled to
  the difference-of-means norm so coefficients are comparable.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .extract import REST, ActivationTable
from .sites import Site
from .vectors import SteeringVector

METHODS = ("diffmean", "pca", "logistic")


def _sites(table: ActivationTable, sites) -> list[Site]:
    if sites is None:
        return table.sites
    if isinstance(sites, (Site, str, int)):
        sites = [sites]
    return [table.check_site(s) for s in sites]


def baseline_mask(table: ActivationTable, label: str, baseline: str) -> torch.Tensor:
    """Rows that form the baseline for ``label``."""
    table.check_label(label)
    if baseline == "rest":
        if REST not in table.labels:
            raise ValueError("baseline 'rest' needs REST rows: extract with rest=True")
        return table.mask(REST)
    if baseline == "all":
        return torch.tensor([lab != REST for lab in table.labels])
    if baseline == label:
        raise ValueError(f"baseline label {baseline!r} is the label itself: pick another")
    if baseline not in set(table.labels):
        raise ValueError(
            f"unknown baseline {baseline!r}: use 'rest', 'all', or one of {table.label_names}"
        )
    return table.mask(baseline)


def label_and_baseline(
    table: ActivationTable, label: str, baseline: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean row masks ``(label rows, baseline rows)`` for a two-class fit: the baseline
    (see :func:`baseline_mask`) without the label's own rows. Refused when either is empty."""
    pos = table.mask(label)
    neg = baseline_mask(table, label, baseline) & ~pos
    if int(pos.sum()) == 0:
        raise ValueError(f"label {label!r} has no examples: extract traces that contain it")
    if int(neg.sum()) == 0:
        raise ValueError(
            f"baseline {baseline!r} has no examples for label {label!r}: all rows are in one "
            "class; choose another baseline or add traces"
        )
    return pos, neg


def _make(table, label, method, baseline, vecs, pos, neg, extra=None) -> SteeringVector:
    return SteeringVector(
        vecs,
        label,
        method,
        table.fingerprint,
        table.pooling,
        baseline,
        table.data_hash,
        {"label": int(pos.sum()), "baseline": int(neg.sum())},
        extra or {},
    )


def fit_diffmean(
    table: ActivationTable,
    label: str,
    sites: Site | str | Sequence | None = None,
    baseline: str = "rest",
    norm_match: bool = False,
) -> SteeringVector:
    """Difference of means: ``mean(label rows) - mean(baseline rows)`` at each site."""
    pos, neg = label_and_baseline(table, label, baseline)
    vecs = {}
    for s in _sites(table, sites):
        x = table.acts[s]
        mu = x[pos].mean(0)
        v = mu - x[neg].mean(0)
        if norm_match:
            v = v * (mu.norm() / v.norm().clamp_min(1e-12))
        vecs[s] = v
    return _make(table, label, "diffmean", baseline, vecs, pos, neg, {"norm_match": norm_match})


def _trace_means(
    table: ActivationTable, x: torch.Tensor, rows: torch.Tensor
) -> dict[int, torch.Tensor]:
    out: dict[int, torch.Tensor] = {}
    ids = table.trace_ids[rows]
    xs = x[rows]
    for t in ids.unique().tolist():
        out[t] = xs[ids == t].mean(0)
    return out


def fit_pca(
    table: ActivationTable,
    label: str,
    sites: Site | str | Sequence | None = None,
    baseline: str = "rest",
) -> SteeringVector:
    """First principal direction of paired differences (label row - same-trace baseline mean).

    The direction is the top right-singular vector of the (uncentred) difference matrix,
    signed to agree with the mean difference and scaled to its projection on it.
    """
    pos, neg = label_and_baseline(table, label, baseline)
    vecs = {}
    for s in _sites(table, sites):
        x = table.acts[s]
        base = _trace_means(table, x, neg)
        rows = [i for i in pos.nonzero().flatten().tolist() if int(table.trace_ids[i]) in base]
        if len(rows) < 2:
            raise ValueError(
                f"PCA needs >= 2 rows of {label!r} paired with a {baseline!r} baseline in the "
                f"same trace, found {len(rows)}: use diffmean or add traces"
            )
        diffs = torch.stack([x[i] - base[int(table.trace_ids[i])] for i in rows])
        _, _, vh = torch.linalg.svd(diffs, full_matrices=False)
        d = vh[0]
        mean_diff = diffs.mean(0)
        if torch.dot(d, mean_diff) < 0:
            d = -d
        vecs[s] = d * torch.dot(d, mean_diff)
    return _make(table, label, "pca", baseline, vecs, pos, neg)


def fit_logistic(
    table: ActivationTable,
    label: str,
    sites: Site | str | Sequence | None = None,
    baseline: str = "rest",
    C: float = 1.0,
    seed: int = 0,
) -> SteeringVector:
    """Direction of a logistic-regression probe (label vs baseline), diffmean-norm scaled."""
    from sklearn.linear_model import LogisticRegression

    pos, neg = label_and_baseline(table, label, baseline)
    vecs = {}
    for s in _sites(table, sites):
        x = table.acts[s]
        X = torch.cat([x[pos], x[neg]]).numpy()
        y = np.r_[np.ones(int(pos.sum())), np.zeros(int(neg.sum()))]
        clf = LogisticRegression(C=C, max_iter=2000, random_state=seed).fit(X, y)
        w = torch.tensor(clf.coef_[0], dtype=torch.float32)
        w = w / w.norm().clamp_min(1e-12)
        dm = x[pos].mean(0) - x[neg].mean(0)
        vecs[s] = w * torch.dot(w, dm)
    return _make(table, label, "logistic", baseline, vecs, pos, neg, {"C": C})


def fit(table: ActivationTable, label: str, method: str = "diffmean", **kw) -> SteeringVector:
    """Dispatch by name: ``"diffmean"``, ``"pca"`` or ``"logistic"``."""
    fns = {"diffmean": fit_diffmean, "pca": fit_pca, "logistic": fit_logistic}
    if method not in fns:
        raise ValueError(f"unknown method {method!r}: use one of {', '.join(METHODS)}")
    return fns[method](table, label, **kw)
