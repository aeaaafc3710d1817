"""Measure each RL claim on the shipped claims folder, with verdicts computed from CIs.

:func:`measure_claim` samples the checkpoints a claim compares on held-out test problems
and returns plain dicts (JSON-ready): per model the pass@k curve with its CI, pass@1,
format shares and shortcut shares; per comparison a paired bootstrap CI over problems; and
a verdict per claim, one of :data:`VERDICTS`.

The pieces each claim is measured with are in :mod:`.evidence`. Verdict rule (one for every claim): an *effect* that the claim predicts is ``yes`` when
its 95% CI lies above 0 and reaches ``min_effect``; ``no`` when the whole CI lies below
``min_effect`` (too small to matter, or the other way); ``unclear`` otherwise. Each claim
combines its effects as its docstring says.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...measures import passk as pk
from ..problem_files import read_problems
from .evidence import (
    at,
    ci,
    effect,
    format_trajectory,
    main_test_problems,
    one_run,
    passk_diff,
    pooled_diff,
    sample_model,
    training_log,
    training_record,
)
from .recipe import ClaimsRecipe, load_claims
from .settings import CLAIMS, ClaimSettings

__all__ = ["measure_claim"]


# -- the five claims ---------------------------------------------------------------------


def _one_example(recipe: ClaimsRecipe, folder: Path, s: ClaimSettings, bar: Any) -> dict:
    """Reproduced when one-example RL lifts pass@1 above the base (effect yes) and stays
    within ``margin`` of full-data RL (CI of one - full above -margin); not reproduced
    when there is no lift or it stays clearly further below full-data RL."""
    task = recipe.organism.task
    problems = main_test_problems(recipe, s)
    runs = recipe.of_claim("one_example")
    seeds = [r.seed for r in runs]
    models = {"base": sample_model(task, recipe.organism_dir / "base", problems, s, s.seed)}
    bar()
    for r, seed in zip(runs, seeds):
        models[f"full-seed{seed}"] = sample_model(
            task, recipe.organism_dir / f"rl-seed{seed}", problems, s, s.seed
        )
        bar()
        models[r.name] = sample_model(task, folder / r.name, problems, s, s.seed)
        bar()
    one = [models[r.name] for r in runs]
    full = [models[f"full-seed{seed}"] for seed in seeds]
    lift = pooled_diff(one, [models["base"]], s)
    gap = pooled_diff(one, full, s)
    full_lift = pooled_diff(full, [models["base"]], s)
    e_lift = effect(lift["low"], lift["high"], s.min_effect)
    close = "yes" if gap["low"] > -s.margin else "no" if gap["high"] < -s.margin else "unclear"
    if e_lift == "yes" and close == "yes":
        verdict = "reproduced"
    elif e_lift == "no" or close == "no":
        verdict = "not reproduced"
    else:
        verdict = "inconclusive"
    record = training_record(folder)
    trajectories = {
        r.name: format_trajectory(training_log(folder / "logs" / f"{r.name}.jsonl")) for r in runs
    }
    for seed in seeds:
        log = recipe.organism_dir / "logs" / f"rl-seed{seed}.jsonl"
        trajectories[f"full-seed{seed}"] = format_trajectory(training_log(log))
    return {
        "models": models,
        "example": record.get("one_example"),
        "comparisons": {
            "one_minus_base": lift,
            "one_minus_full": gap,
            "full_minus_base": full_lift,
        },
        "effects": {"lift": e_lift, "close_to_full": close},
        "verdict": verdict,
        "trajectories": trajectories,
    }


def _spurious(recipe: ClaimsRecipe, folder: Path, s: ClaimSettings, bar: Any) -> dict:
    """Per spurious reward: reproduced when its pass@1 gain over the base is an effect (yes),
    not reproduced when it is not (no). The true reward is the positive control. The
    clipping claim: reproduced when random reward gains and the gain disappears without
    clipping (random - no-clip: yes); not reproduced when it stays (no); inconclusive
    otherwise, and always when random reward gains nothing (nothing to explain)."""
    task = recipe.organism.task
    problems = main_test_problems(recipe, s)
    models = {"base": sample_model(task, recipe.organism_dir / "base", problems, s, s.seed)}
    bar()
    for r in recipe.of_claim("spurious"):
        models[r.name] = sample_model(task, folder / r.name, problems, s, s.seed)
        bar()
    base = models["base"]
    per_reward: dict[str, Any] = {}
    for r in recipe.of_claim("spurious"):
        d = pooled_diff([models[r.name]], [base], s)
        e = effect(d["low"], d["high"], s.min_effect)
        per_reward[r.name] = {
            "reward": r.rl.reward,
            "clip": r.rl.clip,
            "gain": d,
            "effect": e,
            "verdict": {"yes": "reproduced", "no": "not reproduced"}.get(e, "inconclusive"),
        }
    clip: dict[str, Any] = {"verdict": "inconclusive", "why": "no runs"}
    noclip = [r for r in recipe.of_claim("spurious") if r.rl.reward == "random" and not r.rl.clip]
    clipped = [r for r in recipe.of_claim("spurious") if r.rl.reward == "random" and r.rl.clip]
    if noclip and clipped:
        d = pooled_diff([models[clipped[0].name]], [models[noclip[0].name]], s)
        e = effect(d["low"], d["high"], s.min_effect)
        if per_reward[clipped[0].name]["effect"] != "yes":
            verdict, why = "inconclusive", "random reward gained nothing here: nothing to explain"
        else:
            verdict = {"yes": "reproduced", "no": "not reproduced"}.get(e, "inconclusive")
            why = "random reward gained; does it keep its gain without clipping?"
        clip = {"difference": d, "effect": e, "verdict": verdict, "why": why}
    control = [v for v in per_reward.values() if v["reward"] == "verify"]
    trajectories = {
        r.name: format_trajectory(training_log(folder / "logs" / f"{r.name}.jsonl"))
        for r in recipe.of_claim("spurious")
    }
    return {
        "models": models,
        "rewards": per_reward,
        "clipping": clip,
        "control_ok": bool(control) and control[0]["effect"] == "yes",
        "verdict": ", ".join(
            f"{v['reward']}{'' if v['clip'] else ' (no clip)'}: {v['verdict']}"
            for v in per_reward.values()
            if v["reward"] != "verify"
        ),
        "trajectories": trajectories,
    }


def _over_hard(recipe: ClaimsRecipe, folder: Path, s: ClaimSettings, bar: Any) -> dict:
    """Reproduced when RL on over-hard problems lowers main-class pass@1 below the base
    (base - over-hard: yes) and raises the share of shortcut traces (yes); not
    reproduced when pass@1 does not fall (no); inconclusive otherwise."""
    task = recipe.organism.task
    problems = main_test_problems(recipe, s)
    (run,) = one_run(recipe, "over_hard", "grpo")
    seed = run.seed
    models = {
        "base": sample_model(task, recipe.organism_dir / "base", problems, s, s.seed, examples=3),
    }
    bar()
    models["normal-rl"] = sample_model(
        task, recipe.organism_dir / f"rl-seed{seed}", problems, s, s.seed, 3
    )
    bar()
    models["over-hard"] = sample_model(task, folder / run.name, problems, s, s.seed, examples=3)
    bar()
    drop = pooled_diff([models["base"]], [models["over-hard"]], s)
    sc = np.array(models["over-hard"]["_shortcut_rows"]["any"]) - np.array(
        models["base"]["_shortcut_rows"]["any"]
    )
    more_shortcuts = ci(sc, s)
    e_drop = effect(drop["low"], drop["high"], s.min_effect)
    e_sc = effect(more_shortcuts["low"], more_shortcuts["high"], s.min_effect)
    if e_drop == "yes" and e_sc == "yes":
        verdict = "reproduced"
    elif e_drop == "no":
        verdict = "not reproduced"
    else:
        verdict = "inconclusive"
    hard = read_problems(folder / "problems" / "over_hard.jsonl")
    return {
        "models": models,
        "comparisons": {
            "base_minus_over_hard": drop,
            "normal_minus_over_hard": pooled_diff([models["normal-rl"]], [models["over-hard"]], s),
            "shortcuts_over_hard_minus_base": more_shortcuts,
            "passk_over_hard_minus_base": passk_diff(models["over-hard"], models["base"], s),
        },
        "effects": {"pass1_drop": e_drop, "more_shortcuts": e_sc},
        "verdict": verdict,
        "selection": training_record(folder).get("over_hard"),
        "training_problems": [p.uid for p in hard],
        "trajectory": format_trajectory(training_log(folder / "logs" / f"{run.name}.jsonl")),
    }


def _distillation(recipe: ClaimsRecipe, folder: Path, s: ClaimSettings, bar: Any) -> dict:
    """Per method, "moved the boundary" is an effect on pass@k at the largest k on the
    problems crossing the unseen transitions (method - base). Reproduced when SFT moved it
    (yes) and RL did not (no); not reproduced when SFT did not (no) or RL did (yes);
    inconclusive otherwise."""
    task = recipe.organism.task
    names = {
        key: one_run(recipe, "distillation", kind)[0].name
        for key, kind in (("base", "pretrain"), ("sft", "sft"), ("rl", "grpo"))
    }
    unseen = recipe.run(names["base"]).corpus.get("unseen", [])
    if not unseen:
        raise ValueError("the holdout-base run names no unseen transitions ([run.corpus] unseen)")
    test = read_problems(recipe.organism_dir / "splits" / "test.jsonl", cls="main")
    groups = {
        "crossing": [p for p in test if task.crosses(p, unseen)][: s.n_problems],
        "rest": [p for p in test if not task.crosses(p, unseen)][: s.n_problems],
    }
    out: dict[str, Any] = {"unseen": [f"{u}->{task.step(u)}" for u in unseen], "groups": {}}
    kmax = len(s.ks) - 1
    for g, problems in groups.items():
        if not problems:
            raise ValueError(f"no {g} test problems: choose another unseen state")
        models = {}
        for key, run in names.items():
            models[key] = sample_model(task, folder / run, problems, s, s.seed)
            bar()
        res = {"n_problems": len(problems), "models": models, "moved": {}}
        for m in ("sft", "rl"):
            d = passk_diff(models[m], models["base"], s)
            mean, low, high = at(d, kmax)
            res["moved"][m] = {
                "difference": d,
                "effect": effect(low, high, s.min_effect),
                "coverage": pk.coverage_split(models["base"]["counts"], models[m]["counts"]),
            }
        out["groups"][g] = res
    moved = out["groups"]["crossing"]["moved"]
    sft, rl = moved["sft"]["effect"], moved["rl"]["effect"]
    if sft == "yes" and rl == "no":
        verdict = "reproduced"
    elif sft == "no" or rl == "yes":
        verdict = "not reproduced"
    else:
        verdict = "inconclusive"
    out["verdict"] = verdict
    out["teacher"] = training_record(folder).get("teacher")
    return out


def _sparsity(recipe: ClaimsRecipe, folder: Path, s: ClaimSettings, bar: Any) -> dict:
    """From the training record (updates measured at each snapshot), checked against the
    shipped final checkpoints. RL is sparser than SFT at equal lr x steps when the
    per-matrix paired CI of (SFT updated share - RL updated share) is an effect. Reproduced
    when it is at every common (lr, steps); not reproduced when it is at none (no
    everywhere); inconclusive otherwise."""
    from .train import measure_update

    record = training_record(folder)
    runs = recipe.of_claim("sparsity")
    missing = [r.name for r in runs if r.name not in record["runs"]]
    if missing:  # a verdict over some of the comparisons would read as one over all
        raise ValueError(
            f"{folder}/training.json lacks the sparsity runs {missing}: train them with "
            f"rsteer organism train --recipe {recipe.path} --out {folder} (finished runs "
            "are skipped)"
        )
    if not runs:
        raise ValueError(f"{recipe.path} names no sparsity runs")
    rows = []
    for r in runs:
        entry = record["runs"][r.name]
        now = measure_update(recipe.organism_dir / "base", folder / r.name)
        logged = entry["update"]
        if abs(now["bf16_updated"] - logged["bf16_updated"]) > 1e-9:
            raise ValueError(
                f"{r.name}: the shipped checkpoint's bf16 updated share {now['bf16_updated']:.6f} "
                f"differs from training.json's {logged['bf16_updated']:.6f}: retrain or re-measure"
            )
        bar()
        spec = r.rl if r.kind == "grpo" else r.sft
        for step, u in entry["updates"].items():
            rows.append(
                {
                    "run": r.name,
                    "kind": r.kind,
                    "seed": r.seed,
                    "lr": spec.lr,
                    "steps": int(step),
                    "lr_x_steps": spec.lr * int(step),
                    **{k: v for k, v in u.items() if k != "per_matrix"},
                    "_per_matrix": u.get("per_matrix"),
                }
            )
    comparisons = []
    for rl_row in [x for x in rows if x["kind"] == "grpo"]:
        match = [
            x
            for x in rows
            if x["kind"] == "sft"
            and x["seed"] == rl_row["seed"]
            and x["lr"] == rl_row["lr"]
            and x["steps"] == rl_row["steps"]
        ]
        if not match or rl_row["_per_matrix"] is None or match[0]["_per_matrix"] is None:
            continue
        a = np.array(list(match[0]["_per_matrix"].values()))
        b = np.array([rl_row["_per_matrix"][k] for k in match[0]["_per_matrix"]])
        d = ci(a - b, s)
        comparisons.append(
            {
                "lr": rl_row["lr"],
                "steps": rl_row["steps"],
                "seed": rl_row["seed"],
                "sft_minus_rl": d,
                "effect": effect(d["low"], d["high"], s.min_effect),
            }
        )
    effects = {c["effect"] for c in comparisons}
    if not comparisons:
        verdict = "inconclusive"
    elif effects == {"yes"}:
        verdict = "reproduced"
    elif effects == {"no"}:
        verdict = "not reproduced"
    else:
        verdict = "inconclusive"
    return {
        "grid": [{k: v for k, v in x.items() if not k.startswith("_")} for x in rows],
        "overlap": record.get("overlap", []),
        "comparisons": comparisons,
        "verdict": verdict,
        "organism_rl": _organism_rl_update(recipe),
    }


def _organism_rl_update(recipe: ClaimsRecipe) -> dict[str, Any]:
    """The shipped organism's own RL runs (lr and steps of its recipe), for reference."""
    from .train import measure_update

    rl = recipe.organism.rl
    seed = recipe.organism.rl_seeds[0]
    u = measure_update(recipe.organism_dir / "base", recipe.organism_dir / f"rl-seed{seed}")
    return {"lr": rl.lr, "steps": rl.steps, "lr_x_steps": rl.lr * rl.steps, **u}


_MEASURES = {
    "one_example": (_one_example, 5),
    "spurious": (_spurious, 6),
    "over_hard": (_over_hard, 3),
    "distillation": (_distillation, 6),
    "sparsity": (_sparsity, 10),
}


def measure_claim(
    claim: str,
    folder: str | Path = "data/organism-claims",
    settings: ClaimSettings | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Measure ``claim`` (one of :data:`rlvr.organism.claims.CLAIMS`) from a claims folder."""
    if claim not in CLAIMS:
        raise ValueError(f"unknown claim {claim!r}: use one of {', '.join(CLAIMS)}")
    folder = Path(folder)
    if not (folder / "recipe.toml").exists():
        raise ValueError(f"no claims recipe in {folder}: pass the folder that holds recipe.toml")
    recipe = load_claims(folder / "recipe.toml")
    s = settings or ClaimSettings()
    fn, total = _MEASURES[claim]
    from tqdm.auto import tqdm

    with tqdm(total=total, desc=claim, disable=not progress, leave=False) as t:
        out = fn(recipe, folder, s, lambda: t.update(1))
    out["claim"] = claim
    out["settings"] = {k: getattr(s, k) for k in s.__dataclass_fields__}
    return out
