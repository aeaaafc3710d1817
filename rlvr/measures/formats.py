"""Format (strategy) collapse over RL training: shares of each output format per step.

The RL trainer logs one JSON object per step, ``{"step": int, "formats": {name: count}}``;
:func:`format_shares_from_log` reads that log and :meth:`FormatShares.to_log` writes it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FormatShares", "format_shares", "format_shares_from_log", "plot_format_shares"]


@dataclass(frozen=True)
class FormatShares:
    """Per-step counts and shares of each format label.

    ``counts`` and ``shares`` have shape ``(len(steps), len(labels))``; ``entropy`` is the
    Shannon entropy of each step's shares in bits.
    """

    steps: np.ndarray
    labels: tuple[str, ...]
    counts: np.ndarray
    shares: np.ndarray
    entropy: np.ndarray

    def collapse_step(self, threshold: float = 0.9) -> int | None:
        """First step at which a single format holds a share >= ``threshold`` (None if never)."""
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            raise TypeError(f"threshold must be a float in (0, 1], got {threshold!r}")
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold={threshold} must lie in (0, 1]: pass e.g. 0.9")
        hit = np.flatnonzero(self.shares.max(axis=1) >= threshold)
        return int(self.steps[hit[0]]) if hit.size else None

    def dominant(self) -> list[str]:
        """The label with the largest share at each step (first label on ties)."""
        return [self.labels[i] for i in np.argmax(self.shares, axis=1)]

    def to_log(self, path: str | os.PathLike[str]) -> None:
        """Write the counts as JSONL, one ``{"step", "formats"}`` object per step."""
        with open(path, "w", encoding="utf-8") as f:
            for step, row in zip(self.steps, self.counts):
                formats = {lab: int(c) for lab, c in zip(self.labels, row)}
                f.write(json.dumps({"step": int(step), "formats": formats}) + "\n")


def _entropy_bits(shares: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(shares > 0, shares * np.log2(shares), 0.0)
    return np.abs(-terms.sum(axis=1))  # abs turns -0.0 into 0.0


def _check_labels(labels: Sequence[str] | None) -> tuple[str, ...] | None:
    if labels is None:
        return None
    if isinstance(labels, str):
        raise TypeError("labels must be a sequence of label names, not one string")
    out = tuple(labels)
    if not out:
        raise ValueError("labels is empty: pass the format names, or None to infer them")
    if len(set(out)) != len(out):
        raise ValueError(f"labels {list(out)} contain repeats: list each format once")
    return out


def _from_counts(
    per_step: dict[int, dict[str, int]], labels: tuple[str, ...] | None, source: str
) -> FormatShares:
    if not per_step:
        raise ValueError(f"{source} is empty: pass at least one step of completions")
    steps = sorted(per_step)
    if labels is None:
        labels = tuple(sorted({lab for row in per_step.values() for lab in row}))
    else:
        allowed = set(labels)
        for step in steps:
            for lab in per_step[step]:
                if lab not in allowed:
                    raise ValueError(
                        f"format {lab!r} at step {step} is not in labels {list(labels)}: add it "
                        "to labels or map it to an existing one (e.g. 'other')"
                    )
    counts = np.array(
        [[per_step[s].get(lab, 0) for lab in labels] for s in steps], dtype=np.int64
    ).reshape(len(steps), len(labels))
    totals = counts.sum(axis=1)
    if np.any(totals == 0):
        empty = steps[int(np.argmax(totals == 0))]
        raise ValueError(f"step {empty} has no completions in {source}: drop the step or fill it")
    shares = counts / totals[:, None]
    return FormatShares(
        steps=np.asarray(steps, dtype=np.int64),
        labels=labels,
        counts=counts,
        shares=shares,
        entropy=_entropy_bits(shares),
    )


def _check_step(step: Any, where: str) -> int:
    if isinstance(step, bool) or not isinstance(step, int | np.integer):
        raise TypeError(f"{where}: step must be an int, got {type(step).__name__} {step!r}")
    return int(step)


def format_shares(
    completions_by_step: Mapping[int, Sequence[str]],
    labeller: Callable[[str], str],
    labels: Sequence[str] | None = None,
) -> FormatShares:
    """Label every completion and tabulate format shares per RL step.

    ``labels`` fixes the label set and order; ``None`` uses the sorted labels seen.
    """
    if not isinstance(completions_by_step, Mapping):
        raise TypeError("completions_by_step must map RL step -> list of completion strings")
    if not callable(labeller):
        raise TypeError("labeller must be a function mapping a completion string to a label")
    labels = _check_labels(labels)
    per_step: dict[int, dict[str, int]] = {}
    for step, completions in completions_by_step.items():
        step = _check_step(step, "completions_by_step")
        if isinstance(completions, str):
            raise TypeError(f"step {step}: pass a list of completions, not one string")
        row: dict[str, int] = {}
        for text in completions:
            lab = labeller(text)
            if not isinstance(lab, str):
                raise TypeError(
                    f"labeller returned {type(lab).__name__} {lab!r} at step {step}: it must "
                    "return a format name (str)"
                )
            row[lab] = row.get(lab, 0) + 1
        per_step[step] = row
    return _from_counts(per_step, labels, "completions_by_step")


def format_shares_from_log(
    path: str | os.PathLike[str], labels: Sequence[str] | None = None
) -> FormatShares:
    """Read a JSONL log of ``{"step": int, "formats": {name: count}}`` objects."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"format log {str(p)!r} does not exist")
    labels = _check_labels(labels)
    per_step: dict[int, dict[str, int]] = {}
    with open(p, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{p}:{lineno}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(
                    f"{where} is not valid JSON ({err}): fix or drop the line"
                ) from err
            if not isinstance(obj, dict) or "step" not in obj or "formats" not in obj:
                raise ValueError(f'{where}: expected {{"step": int, "formats": {{name: count}}}}')
            step = _check_step(obj["step"], where)
            formats = obj["formats"]
            if not isinstance(formats, dict):
                raise ValueError(f"{where}: 'formats' must be an object of name -> count")
            if step in per_step:
                raise ValueError(f"{where}: step {step} appears twice: keep one record per step")
            row: dict[str, int] = {}
            for name, count in formats.items():
                if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                    raise ValueError(
                        f"{where}: count {count!r} for format {name!r} must be an int >= 0"
                    )
                row[name] = count
            per_step[step] = row
    return _from_counts(per_step, labels, str(p))


def plot_format_shares(shares: FormatShares, ax: Any = None, kind: str = "area") -> Any:
    """Plot format shares against RL step as a stacked area (``kind="area"``) or lines.

    Returns the matplotlib Axes.
    """
    import matplotlib.pyplot as plt

    if not isinstance(shares, FormatShares):
        raise TypeError(f"shares must be a FormatShares, got {type(shares).__name__}")
    if kind not in ("area", "lines"):
        raise ValueError(f"kind={kind!r} is not supported: use 'area' or 'lines'")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    if kind == "area":
        ax.stackplot(shares.steps, shares.shares.T, labels=shares.labels)
        ax.set_ylim(0.0, 1.0)
    else:
        for j, lab in enumerate(shares.labels):
            ax.plot(shares.steps, shares.shares[:, j], label=lab)
        ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("RL step")
    ax.set_ylabel("share of completions")
    ax.legend(loc="best", fontsize="small")
    return ax
