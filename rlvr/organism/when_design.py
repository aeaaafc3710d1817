"""Every design check of a "when" organism on its checkpoints, with bootstrap CIs.

:func:`design_checks` loads an organism folder's base and RL checkpoints, runs the checks of
:mod:`.when` on the main test problems and summarises them: greedy pass@1 under each
schedule with a bootstrap CI (:func:`bootstrap_mean`), the share of the base-to-RL gap each
schedule recovers (:func:`recovery_ci`, a paired bootstrap), the AUROC of P(``?``), and the
rollouts of the RL logs that an answer-only verifier would have paid for.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .task import PermutationChain, Problem
from .when import check_auroc, scheduled_greedy, stop_by_density

__all__ = ["bootstrap_mean", "design_checks", "recovery_ci"]


def bootstrap_mean(x: Sequence[float], n_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    """Mean and 95% percentile-bootstrap CI of per-problem values."""
    a = np.asarray(x, dtype=float)
    if a.size == 0:
        raise ValueError("no values to average")
    rng = np.random.default_rng(seed)
    means = a[rng.integers(0, a.size, size=(n_boot, a.size))].mean(1)
    return {
        "mean": float(a.mean()),
        "low": float(np.quantile(means, 0.025)),
        "high": float(np.quantile(means, 0.975)),
        "n": int(a.size),
    }


def recovery_ci(
    hyb: Sequence[float],
    base: Sequence[float],
    rl: Sequence[float],
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """Gap recovered ``(hyb - base) / (rl - base)`` with a paired bootstrap CI over problems."""
    h, b, r = (np.asarray(v, dtype=float) for v in (hyb, base, rl))
    if not h.size == b.size == r.size or h.size == 0:
        raise ValueError("hyb, base and rl need one value per problem, the same problems")
    gap = r.mean() - b.mean()
    if gap <= 0:
        return {"mean": float("nan"), "low": float("nan"), "high": float("nan"), "gap": gap}
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, h.size, size=(n_boot, h.size))
    g = r[idx].mean(1) - b[idx].mean(1)
    ok = g > 0
    rec = (h[idx].mean(1) - b[idx].mean(1))[ok] / g[ok]
    return {
        "mean": float((h.mean() - b.mean()) / gap),
        "low": float(np.quantile(rec, 0.025)),
        "high": float(np.quantile(rec, 0.975)),
        "gap": float(gap),
    }


def _training_wrong_chains(log_path: Any, rollouts_per_step: int) -> dict[str, float] | None:
    """From an RL log: rewarded rollouts, and rollouts a lenient verifier would also have
    rewarded although their chain was wrong (the strict reward paid nothing for them)."""
    import json
    from pathlib import Path

    path = Path(log_path)
    if not path.exists():
        return None
    recs = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    if not recs or "answer_right_chain_wrong" not in recs[0]:
        return None
    paid = sum(round(r["reward"] * rollouts_per_step) for r in recs)
    gamed = sum(int(r["answer_right_chain_wrong"]) for r in recs)
    return {
        "rewarded": int(paid),
        "answer_right_chain_wrong": int(gamed),
        "share_of_lenient_rewarded": gamed / (paid + gamed) if paid + gamed else float("nan"),
    }


def design_checks(
    root: Any,
    recipe: Any,
    problems: Sequence[Problem],
    rl_counts: dict[str, np.ndarray],
    n_samples: int,
    *,
    n_auroc: int = 4,
    n_traces: int = 256,
    n_boot: int = 1000,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, Any]:
    """Every design check of a "when" organism on ``problems`` (the main test split).

    ``rl_counts[name]`` holds each model's per-problem right-sample counts out of
    ``n_samples`` (T = 1, from the pass@k evaluation), for recovery against sampled pass@1.
    ``n_auroc`` base samples per problem give the base-written prefixes of the AUROC;
    ``n_traces`` corpus traces per density give the stop accuracy.
    """
    from pathlib import Path

    from transformers import AutoModelForCausalLM

    from .generate import sample_completions

    root = Path(root)
    task: PermutationChain = recipe.task
    names = ["base"] + [f"rl-seed{s}" for s in recipe.rl_seeds]
    models = {
        n: AutoModelForCausalLM.from_pretrained(root / n, dtype=torch.float32).eval() for n in names
    }
    lo, hi = task.hop_range("main")
    out: dict[str, Any] = {"n_problems": len(problems)}

    def say(msg: str) -> None:
        if progress:
            print(msg, flush=True)

    say("design checks: stop accuracy by check density")
    out["stop_by_density"] = {
        n: {
            "main_hops": stop_by_density(
                m, task, recipe.pretrain.corpus, hops=(lo, hi), n_traces=n_traces
            ),
            "corpus_hops": stop_by_density(m, task, recipe.pretrain.corpus, n_traces=n_traces),
        }
        for n, m in models.items()
    }
    say("design checks: greedy decoding under schedules")
    runs: dict[str, list[str]] = {}
    runs["base"] = scheduled_greedy(models["base"], task, problems, None)
    runs["base+schedule"] = scheduled_greedy(models["base"], task, problems, "schedule")
    runs["base+everywhere"] = scheduled_greedy(models["base"], task, problems, "everywhere")
    for n in names[1:]:
        runs[n] = scheduled_greedy(models[n], task, problems, None)
    right = {k: [task.verify(p, c) for p, c in zip(problems, cs)] for k, cs in runs.items()}
    greedy: dict[str, Any] = {}
    for k, cs in runs.items():
        body_tokens = sum(len(c) for c in cs)
        greedy[k] = {
            "pass1": bootstrap_mean(right[k], n_boot, seed),
            "lenient_pass1": float(
                np.mean([task.verify(p, c, strict=False) for p, c in zip(problems, cs)])
            ),
            "finished": float(np.mean([c.endswith(".") for c in cs])),
            "checks_per_problem": float(np.mean([c.split("=")[0].count("?") for c in cs])),
            "check_token_share": (
                sum(c.split("=")[0].count("?") for c in cs) / body_tokens if body_tokens else 0.0
            ),
            "mean_length": float(np.mean([len(c) for c in cs])),
            "examples": [f"{task.prompt(p)}{c}" for p, c in zip(problems[:3], cs[:3])],
        }
    out["greedy"] = greedy
    rec: dict[str, Any] = {}
    for n in names[1:]:
        rl_sampled = rl_counts[n] / n_samples
        base_sampled = rl_counts["base"] / n_samples
        rec[n] = {
            "greedy": {
                pol: recovery_ci(right[f"base+{pol}"], right["base"], right[n], n_boot, seed)
                for pol in ("schedule", "everywhere")
            },
            "sampled": {
                pol: recovery_ci(right[f"base+{pol}"], base_sampled, rl_sampled, n_boot, seed)
                for pol in ("schedule", "everywhere")
            },
        }
    out["recovery"] = rec
    say("design checks: AUROC of P(?) on base-written prefixes")
    base_samples = sample_completions(
        models["base"], task, problems, n_auroc, temperature=1.0, seed=seed + 1
    )
    out["auroc_base_sampled"] = check_auroc(
        models, task, problems, base_samples, n_boot=min(n_boot, 500), seed=seed
    )
    out["auroc_base_greedy"] = check_auroc(
        models, task, problems, [[c] for c in runs["base"]], n_boot=min(n_boot, 500), seed=seed
    )
    out["training_wrong_chains"] = {
        n: _training_wrong_chains(
            root / "logs" / f"{n}.jsonl", recipe.rl.prompts_per_step * recipe.rl.group
        )
        for n in names[1:]
    }
    return out
