"""What a model's sampled completions do: formats, rewards, and per-strategy accuracy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .task import FORMATS, OTHER, PermutationChain, Problem

__all__ = ["profile"]


# per-trace counts of TraceStats summed over the traces that write steps
_COUNTS = (
    "steps",
    "steps_right",
    "checks",
    "checks_right",
    "hard_checks",
    "hard_checks_right",
    "checks_after_right",
    "checks_after_wrong",
    "wrong_steps",
)


def _rate(num: float, den: float) -> float:
    return float(num / den) if den else float("nan")


def profile(
    task: PermutationChain, problems: Sequence[Problem], completions: Sequence[Sequence[str]]
) -> dict[str, Any]:
    """Summarise ``completions[i]`` (samples for ``problems[i]``).

    Returns format shares, pass@1 (mean reward) overall and per format, sampled step
    accuracy (right steps / written steps), check and hard-check accuracy of sampled ``?v``,
    the check rate after right and after wrong steps (is checking *scheduled*?), the share
    of traces stopping after exactly k hops, the share that finished within the budget, and
    the mean completion length.
    """
    if len(problems) != len(completions):
        raise ValueError(
            f"{len(problems)} problems but {len(completions)} completion lists: pass one list per problem"
        )
    names = (*FORMATS, OTHER)
    fmt_n = dict.fromkeys(names, 0)
    fmt_ok = dict.fromkeys(names, 0)
    tot: dict[str, float] = dict.fromkeys(
        (*_COUNTS, "stopped_right", "finished", "length", "body_traces"), 0.0
    )
    n = 0
    rewards = []
    for p, comps in zip(problems, completions):
        for c in comps:
            st = task.trace_stats(p, c)
            n += 1
            fmt_n[st.format] += 1
            fmt_ok[st.format] += st.correct
            rewards.append(float(st.correct))
            tot["finished"] += st.finished
            tot["length"] += st.length
            if st.format in ("STEP", "CHECK"):
                tot["body_traces"] += 1
                tot["stopped_right"] += st.stopped_right
                for k in _COUNTS:
                    tot[k] += getattr(st, k)
    return {
        "n_samples": n,
        "pass1": float(np.mean(rewards)) if rewards else float("nan"),
        "formats": {f: _rate(fmt_n[f], n) for f in names},
        "format_counts": {f: int(fmt_n[f]) for f in names},
        "pass1_by_format": {f: _rate(fmt_ok[f], fmt_n[f]) for f in names},
        "step_acc": _rate(tot["steps_right"], tot["steps"]),
        "check_acc": _rate(tot["checks_right"], tot["checks"]),
        "hard_check_acc": _rate(tot["hard_checks_right"], tot["hard_checks"]),
        "n_checks": int(tot["checks"]),
        "n_hard_checks": int(tot["hard_checks"]),
        "check_rate_after_right": _rate(tot["checks_after_right"], tot["steps_right"]),
        "check_rate_after_wrong": _rate(tot["checks_after_wrong"], tot["wrong_steps"]),
        "stop_acc": _rate(tot["stopped_right"], tot["body_traces"]),
        "finished": _rate(tot["finished"], n),
        "mean_length": _rate(tot["length"], n),
    }
