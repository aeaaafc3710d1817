"""How well a labeller agrees with annotated traces: accuracy, macro-F1, Cohen's kappa.

:func:`evaluate` labels every annotated trace with a labeller (the trace's sentences in
order, one call per trace) and compares with the annotation; :func:`agreement` compares
two label lists. Both report the majority-class baseline (always answering the most
frequent annotated label) and bootstrap 95% CIs that resample whole traces, since
sentences of one trace are not independent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    cohen_kappa_score,
    f1_score,
    precision_recall_fscore_support,
)

from .annotated import AnnotatedTrace, read_annotated
from .labels import LABELS, SHORT, Labeller

__all__ = ["Agreement", "agreement", "evaluate"]


@dataclass(frozen=True)
class Agreement:
    """Agreement of predicted with annotated labels (``ci``: bootstrap 95% intervals)."""

    n_sentences: int
    n_traces: int
    accuracy: float
    macro_f1: float
    kappa: float
    majority_label: str
    majority_accuracy: float
    labels: tuple[str, ...]
    per_label: dict[str, dict[str, float]]
    confusion: list[list[int]]
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "n_sentences": self.n_sentences,
            "n_traces": self.n_traces,
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "kappa": self.kappa,
            "majority_label": self.majority_label,
            "majority_accuracy": self.majority_accuracy,
            "ci": {k: list(v) for k, v in self.ci.items()},
        }

    def summary(self) -> str:
        """A plain-text table: the headline figures, per-label scores and the confusion."""

        def ci(name: str) -> str:
            lo_hi = self.ci.get(name)
            return f" [{lo_hi[0]:.3f}, {lo_hi[1]:.3f}]" if lo_hi else ""

        lines = [
            f"{self.n_sentences} sentences in {self.n_traces} traces",
            f"accuracy {self.accuracy:.3f}{ci('accuracy')}   macro-F1 {self.macro_f1:.3f}"
            f"{ci('macro_f1')}   kappa {self.kappa:.3f}{ci('kappa')}",
            f"majority baseline ({self.majority_label}) {self.majority_accuracy:.3f}",
            f"{'label':<24}{'precision':>10}{'recall':>8}{'f1':>7}{'support':>9}",
        ]
        for label, s in self.per_label.items():
            lines.append(
                f"{label:<24}{s['precision']:>10.2f}{s['recall']:>8.2f}{s['f1']:>7.2f}"
                f"{int(s['support']):>9d}"
            )
        lines.append("confusion (rows: annotated, columns: predicted)")
        lines.append(" " * 8 + "".join(f"{SHORT.get(x, x)[:6]:>7}" for x in self.labels))
        for label, row in zip(self.labels, self.confusion):
            lines.append(f"{SHORT.get(label, label)[:6]:<8}" + "".join(f"{n:>7d}" for n in row))
        return "\n".join(lines)


def _from_confusion(c: np.ndarray) -> tuple[float, float, float]:
    """Accuracy, macro-F1 (over labels annotated or predicted) and kappa of a confusion."""
    n = c.sum()
    diag = np.diag(c).astype(float)
    rows, cols = c.sum(1).astype(float), c.sum(0).astype(float)
    acc = diag.sum() / n
    present = (rows + cols) > 0
    denom = rows + cols
    f1 = np.divide(2 * diag, denom, out=np.zeros_like(diag), where=denom > 0)
    expected = (rows * cols).sum() / (n * n)
    kappa = (acc - expected) / (1 - expected) if expected < 1 else 0.0
    return float(acc), float(f1[present].mean()), float(kappa)


def agreement(
    gold: Sequence[str],
    pred: Sequence[str],
    *,
    groups: Sequence[object] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> Agreement:
    """Compare annotated (``gold``) and predicted labels; ``groups`` (e.g. trace ids, one
    per sentence) are resampled as units by the bootstrap (default: each sentence)."""
    gold, pred = list(gold), list(pred)
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} annotated labels but {len(pred)} predicted; pair them up")
    if not gold:
        raise ValueError("nothing to compare: no labelled sentences")
    groups = list(range(len(gold))) if groups is None else list(groups)
    if len(groups) != len(gold):
        raise ValueError(f"groups has {len(groups)} entries for {len(gold)} sentences")
    seen = set(gold) | set(pred)
    labels = tuple(x for x in LABELS if x in seen) + tuple(sorted(seen - set(LABELS)))
    index = {x: k for k, x in enumerate(labels)}
    p, r, f, sup = precision_recall_fscore_support(gold, pred, labels=list(labels), zero_division=0)
    per_label = {
        x: {
            "precision": float(p[k]),
            "recall": float(r[k]),
            "f1": float(f[k]),
            "support": int(sup[k]),
        }
        for k, x in enumerate(labels)
    }
    values, counts = np.unique(np.array(gold, dtype=object), return_counts=True)
    majority = str(values[int(np.argmax(counts))])
    # per-group confusion matrices, summed with bootstrap weights
    gid = {g: k for k, g in enumerate(dict.fromkeys(groups))}
    per_group = np.zeros((len(gid), len(labels), len(labels)), dtype=np.int64)
    for g, a, b in zip(groups, gold, pred):
        per_group[gid[g], index[a], index[b]] += 1
    ci: dict[str, tuple[float, float]] = {}
    if n_boot > 0 and len(gid) > 1:
        rng = np.random.default_rng(seed)
        stats = []
        for _ in range(n_boot):
            w = rng.multinomial(len(gid), np.full(len(gid), 1 / len(gid)))
            stats.append(_from_confusion(np.tensordot(w, per_group, axes=1)))
        arr = np.array(stats)
        for k, name in enumerate(("accuracy", "macro_f1", "kappa")):
            lo, hi = np.nanpercentile(arr[:, k], [2.5, 97.5])
            ci[name] = (float(lo), float(hi))
    return Agreement(
        n_sentences=len(gold),
        n_traces=len(gid),
        accuracy=float(accuracy_score(gold, pred)),
        macro_f1=float(f1_score(gold, pred, labels=list(labels), average="macro", zero_division=0)),
        kappa=float(cohen_kappa_score(gold, pred)),
        majority_label=majority,
        majority_accuracy=float(counts.max() / len(gold)),
        labels=labels,
        per_label=per_label,
        confusion=per_group.sum(0).tolist(),
        ci=ci,
    )


def _apply(labeller: Labeller, trace: AnnotatedTrace) -> list[str]:
    return _check(labeller(trace.texts), trace)


def _check(out: Sequence[str], trace: AnnotatedTrace) -> list[str]:
    if isinstance(out, str) or len(out) != len(trace.sentences):
        raise ValueError(
            f"trace {trace.id}: the labeller returned {len(out)} labels for "
            f"{len(trace.sentences)} sentences; it must return one label per sentence"
        )
    return list(out)


def evaluate(
    labeller: Labeller,
    data: str | Path | Sequence[AnnotatedTrace],
    *,
    split: str | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> Agreement:
    """Agreement of ``labeller`` with annotated traces (a file path or traces), in one call.

    ``split`` keeps only the traces of that split. Each trace's sentences are labelled in
    one call, in order (a labeller with a ``label_traces`` method gets all traces in one
    batch); the CIs resample whole traces.
    """
    traces = read_annotated(data) if isinstance(data, (str, Path)) else list(data)
    if split is not None:
        traces = [t for t in traces if t.split == split]
        if not traces:
            raise ValueError(f"no traces with split {split!r}; check the file's split values")
    if not traces:
        raise ValueError("no annotated traces to evaluate against")
    batch = getattr(labeller, "label_traces", None)  # an LLM labeller batches all traces
    found = batch([t.texts for t in traces]) if callable(batch) else None
    gold, pred, groups = [], [], []
    for k, t in enumerate(traces):
        gold += t.labels
        pred += _apply(labeller, t) if found is None else _check(found[k], t)
        groups += [t.id] * len(t.sentences)
    return agreement(gold, pred, groups=groups, n_boot=n_boot, seed=seed)
