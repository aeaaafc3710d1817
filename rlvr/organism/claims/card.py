"""The claims folder's card (``README.md``): one section per claim with the settings, seeds
and wall time of every shipped run, rendered from ``recipe.toml`` and ``training.json``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .recipe import ClaimRun, ClaimsRecipe, load_claims
from .report import TITLES

__all__ = ["render_claims_card", "write_claims_card"]

_RL_KEYS = ("steps", "lr", "reward", "steps_per_generation", "clip", "prompts_per_step", "group")


def _differs(run: ClaimRun, recipe: ClaimsRecipe) -> str:
    """A run's settings that differ from the organism's (or its SFT/pretrain settings)."""
    if run.rl is not None:
        base = recipe.organism.rl
        parts = [
            f"{k} {getattr(run.rl, k)}" for k in _RL_KEYS if getattr(run.rl, k) != getattr(base, k)
        ]
        return ", ".join(parts) or "the organism's [rl]"
    if run.sft is not None:
        s = run.sft
        return f"SFT: {s.steps} steps, batch {s.batch_size}, lr {s.lr:g}"
    return "pretraining as the organism's; corpus " + ", ".join(
        f"{k} = {v}" for k, v in run.corpus.items()
    )


def _runs_table(runs: list[ClaimRun], recipe: ClaimsRecipe, record: dict[str, Any]) -> list[str]:
    lines = [
        "| run | kind | starts from | trains on | seed | settings (vs the organism's) | wall time |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        e = record["runs"].get(r.name)
        wall = f"{e['seconds']:.0f} s" if e else "not trained"
        data = (
            "teacher traces"
            if r.kind == "sft"
            else ("corpus" if r.kind == "pretrain" else r.problems)
        )
        lines.append(
            f"| `{r.name}` | {r.kind} | {'scratch' if r.kind == 'pretrain' else r.start} | {data} | {r.seed} | {_differs(r, recipe)} | {wall} |"
        )
    return lines


def render_claims_card(folder: str | os.PathLike[str]) -> str:
    """The card's Markdown text."""
    folder = Path(folder)
    recipe = load_claims(folder / "recipe.toml")
    record = json.loads((folder / "training.json").read_text())
    total = sum(e.get("seconds", 0.0) for e in record["runs"].values())
    org = os.path.relpath(recipe.organism_dir, folder)
    lines = [
        "# The RL-claim runs",
        "",
        f"Checkpoints and logs behind the five claim experiments (`data/experiments/claim_*.toml`). "
        f"Every run starts from `{org}/base` (or from a run named under *starts from*) with the "
        f"organism's GRPO settings except those listed. TRL's `GRPOTrainer` for RL, "
        f"`SFTTrainer` for SFT; one CPU thread each ({record.get('torch_threads', 1)} recorded).",
        "",
        f"Total training wall time: {total / 60:.1f} min, on a 2-core machine with two runs "
        "(and other work) sharing it, so each wall time is above what a run takes alone.",
        "",
        "Reproduce: `rsteer organism train --recipe data/organism-claims/recipe.toml --out DIR` "
        "(runs already in DIR are skipped). Measure: `rsteer run data/experiments/claim_<name>.toml`.",
        "",
    ]
    if record.get("notes"):
        lines += ["## Notes", "", *[f"- {n}" for n in record["notes"]], ""]
    for claim, title in TITLES.items():
        runs = recipe.of_claim(claim)
        if not runs:
            continue
        lines += [f"## {title}", "", *_runs_table(runs, recipe, record), ""]
        if claim == "one_example" and "one_example" in record:
            ex = record["one_example"]
            p = ex["problem"]
            lines += [
                f"The example: `{p['start']}{p['hops']:02d}:`, chosen by {ex['rule']} (its base pass@1 "
                f"{ex['base_pass1']:.3f}, the split's mean {ex['train_mean_pass1']:.3f}); repeated "
                f"{ex['repeat']} times so that every batch holds only it. Full-data RL: "
                f"`{org}/rl-seed0` and `rl-seed1` (same steps, seeds, settings).",
                "",
            ]
        if claim == "over_hard" and "over_hard" in record:
            o = record["over_hard"]
            lines += [
                f"The problems: {o['kept']} of a pool of {o['pool']} ({o['rule']}); on the pool the "
                f"base's pass@1 was {o['pool_pass1']:.4f} and it solved {o['pool_solved_any']} "
                "problems at least once. Listed in `problems/over_hard.jsonl`.",
                "",
            ]
        if claim == "distillation":
            t = record.get("teacher", {})
            base = record["runs"].get("holdout-base", {})
            gate = base.get("gate", {})
            tf = gate.get("teacher_forced", {})
            sampled = gate.get("sampled_main_dev", {})
            if t:
                lines.append(
                    f"Teacher traces: {t['kept']} verified of {t['samples']} samples of "
                    f"`{t['teacher']}` on {t['problems']} main train problems "
                    f"(`teacher-traces.jsonl`)."
                )
            if tf:
                lines.append(
                    f"The hold-out base: teacher-forced step accuracy {tf['step_acc']:.3f} (the "
                    f"held-out transition included), hard-check accuracy {tf['hard_check_acc']:.3f}; "
                    f"sampled main dev pass@1 {sampled.get('pass1', float('nan')):.3f}; competence "
                    f"gate {'passed' if gate.get('passed') else 'not passed: ' + str(gate.get('checks'))}."
                )
            lines.append("")
        if claim == "sparsity":
            lines += [
                "Each run's weights were also measured after 10, 25, 50 and 100 updates "
                "(`training.json`: `updates`, `overlap`); the snapshots themselves are not shipped.",
                "",
            ]
    return "\n".join(lines)


def write_claims_card(folder: str | os.PathLike[str]) -> Path:
    """Write ``README.md`` into the claims folder; returns its path."""
    path = Path(folder) / "README.md"
    tmp = path.with_name("README.md.tmp")
    tmp.write_text(render_claims_card(folder))
    os.replace(tmp, path)
    return path
