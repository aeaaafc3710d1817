"""What every claim's measurement is made of: the verdict rule (:func:`effect`), the
shortcut kinds of a completion, per-problem correct counts, bootstrap CIs over problems,
one checkpoint sampled on test problems, and the training record and logs a claim reads."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...measures import passk as pk
from ..generate import sample_completions
from ..problem_files import read_problems
from ..task import PermutationChain, Problem
from .recipe import ClaimsRecipe
from .settings import ClaimSettings

__all__ = [
    "at",
    "ci",
    "effect",
    "format_trajectory",
    "main_test_problems",
    "one_run",
    "passk_diff",
    "passk_matrix",
    "pooled_diff",
    "sample_model",
    "shortcuts",
    "solved_counts",
    "training_log",
    "training_record",
]


def effect(low: float, high: float, min_effect: float) -> str:
    """``yes`` / ``no`` / ``unclear`` for a predicted-positive effect with CI [low, high]."""
    if high < min_effect:
        return "no"
    if low > 0:
        return "yes"
    return "unclear"


def shortcuts(task: PermutationChain, problem: Problem, completion: str) -> dict[str, bool]:
    """The shortcut kinds of one completion.

    ``no_steps``: an answer without the steps (DIRECT). ``skipped_hops``: a written chain
    that answers after fewer than k hops. ``repeated``: a state written twice in the
    chain (the true chain never repeats within ``n_states`` hops): the trace loops or
    repeats itself instead of computing.
    """
    st = task.trace_stats(problem, completion)
    body = completion.split("=", 1)[0]
    states = [
        ch for i, ch in enumerate(body) if ch in task.states and (i == 0 or body[i - 1] != "?")
    ]
    chain = [problem.start, *states]
    return {
        "no_steps": st.format == "DIRECT",
        "skipped_hops": st.format in ("STEP", "CHECK")
        and st.finished
        and st.hops_written < problem.hops,
        "repeated": len(chain) != len(set(chain)),
    }


def solved_counts(
    task: PermutationChain, problems: Sequence[Problem], comps: Sequence[Sequence[str]]
) -> np.ndarray:
    """Verified-correct completions per problem (``comps[i]`` are ``problems[i]``'s)."""
    return np.array([sum(task.verify(p, c) == 1.0 for c in cs) for p, cs in zip(problems, comps)])


def ci(values: np.ndarray, s: ClaimSettings) -> dict[str, Any]:
    """Mean and bootstrap CI over problems (axis 0) of per-problem values (1-D or 2-D)."""
    low, high = pk.bootstrap_ci(values, np.mean, n_boot=s.n_boot, seed=s.seed)
    mean = values.mean(axis=0)
    if values.ndim == 1:
        return {"mean": float(mean), "low": float(low), "high": float(high)}
    return {
        "mean": mean.tolist(),
        "low": np.asarray(low).tolist(),
        "high": np.asarray(high).tolist(),
    }


def passk_matrix(counts: np.ndarray, n: int, s: ClaimSettings) -> np.ndarray:
    return pk.pass_at_k_matrix(counts, np.full(len(counts), n), np.asarray(s.ks))


def sample_model(
    task: PermutationChain,
    path: Path,
    problems: Sequence[Problem],
    s: ClaimSettings,
    seed: int,
    examples: int = 0,
) -> dict[str, Any]:
    """Sample one checkpoint on ``problems``: counts, pass@k, formats, shortcut shares."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path).eval()
    comps = sample_completions(model, task, problems, s.n, seed=seed, batch_size=s.batch_size)
    counts = solved_counts(task, problems, comps)
    kinds = ("no_steps", "skipped_hops", "repeated")
    per_problem = {k: np.zeros(len(problems)) for k in (*kinds, "any")}
    formats: dict[str, int] = {}
    shown: dict[str, list[str]] = {k: [] for k in kinds}
    for i, (p, cs) in enumerate(zip(problems, comps)):
        for c in cs:
            f = task.format_of(c)
            formats[f] = formats.get(f, 0) + 1
            sc = shortcuts(task, p, c)
            for k in kinds:
                per_problem[k][i] += sc[k] / len(cs)
                if sc[k] and len(shown[k]) < examples:
                    shown[k].append(f"{task.prompt(p)}{c}")
            per_problem["any"][i] += any(sc.values()) / len(cs)
    total = sum(formats.values())
    return {
        "path": str(path),
        "counts": counts.tolist(),
        "passk": ci(passk_matrix(counts, s.n, s), s),
        "formats": {k: v / total for k, v in sorted(formats.items())},
        "shortcuts": {k: ci(v, s) for k, v in per_problem.items()},
        "_shortcut_rows": {k: v.tolist() for k, v in per_problem.items()},
        "examples": {k: v for k, v in shown.items() if v},
    }


def passk_diff(a: dict, b: dict, s: ClaimSettings) -> dict[str, Any]:
    """Paired pass@k difference a - b over the same problems, per k."""
    d = passk_matrix(np.array(a["counts"]), s.n, s) - passk_matrix(np.array(b["counts"]), s.n, s)
    return ci(d, s)


def at(d: dict[str, Any], i: int) -> tuple[float, float, float]:
    return d["mean"][i], d["low"][i], d["high"][i]


def pooled_diff(a: Sequence[dict], b: Sequence[dict], s: ClaimSettings) -> dict[str, Any]:
    """Pass@1 difference of seed-pooled groups a - b (per-problem success rates)."""
    ra = np.mean([np.array(m["counts"]) / s.n for m in a], axis=0)
    rb = np.mean([np.array(m["counts"]) / s.n for m in b], axis=0)
    return ci(ra - rb, s)


def main_test_problems(recipe: ClaimsRecipe, s: ClaimSettings) -> list[Problem]:
    test = read_problems(recipe.organism_dir / "splits" / "test.jsonl", cls="main")
    return test[: s.n_problems]


def training_record(folder: Path) -> dict[str, Any]:
    path = folder / "training.json"
    if not path.exists():
        raise ValueError(f"no training.json in {folder}: train the claims first")
    return json.loads(path.read_text())


def training_log(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        raise ValueError(f"no training log at {path}: train the run that writes it")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def format_trajectory(records: list[dict[str, Any]]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"step": [], "verified": []}
    for r in records:
        total = sum(r["formats"].values())
        out["step"].append(r["step"])
        out["verified"].append(r.get("verified", r["reward"]))
        for f, c in r["formats"].items():
            out.setdefault(f, []).append(c / total)
    return out


def one_run(recipe: ClaimsRecipe, claim: str, kind: str) -> list[Any]:
    runs = [r for r in recipe.of_claim(claim) if r.kind == kind]
    if len(runs) != 1:
        raise ValueError(
            f"{recipe.path}: the {claim} claim needs exactly one {kind} run, found "
            f"{[r.name for r in runs]}"
        )
    return runs
