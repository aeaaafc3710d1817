"""Measure each RL claim on the shipped claims folder, with verdicts computed from CIs.

:func:`measure_claim` samples the checkpoints a claim compares on held-out test problems
and returns plain dicts (JSON-ready): per model the pass@k curve with its CI, pass@1,
format shares and shortcut shares; per comparison a paired bootstrap CI over problems; and
a verdict per claim, one of :data:`VERDICTS`.

Verdict rule (one for every claim): an *effect* that the claim predicts is ``yes`` when
its 95% CI lies above 0 and reaches ``min_effect``; ``no`` when the whole CI lies below
``min_effect`` (too small to matter, or the other way); ``unclear`` otherwise. Each claim
combines its effects as its docstring says.
"""

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
from .recipe import ClaimsRecipe, load_claims
from .settings import CLAIMS, VERDICTS, ClaimSettings

__all__ = ["VERDICTS", "ClaimSettings", "effect", "measure_claim", "shortcuts"]


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


# -- shared pieces -------------------------------------------------------------------------


def solved_counts(
    task: PermutationChain, problems: Sequence[Problem], comps: Sequence[Sequence[str]]
) -> np.ndarray:
    """Verified-correct completions per problem (``comps[i]`` are ``problems[i]``'s)."""
    return np.array([sum(task.verify(p, c) == 1.0 for c in cs) for p, cs in zip(problems, comps)])


def _ci(values: np.ndarray, s: ClaimSettings) -> dict[str, Any]:
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


def _passk(counts: np.ndarray, n: int, s: ClaimSettings) -> np.ndarray:
    return pk.pass_at_k_matrix(counts, np.full(len(counts), n), np.asarray(s.ks))


def _model(
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
        "passk": _ci(_passk(counts, s.n, s), s),
        "formats": {k: v / total for k, v in sorted(formats.items())},
        "shortcuts": {k: _ci(v, s) for k, v in per_problem.items()},
        "_shortcut_rows": {k: v.tolist() for k, v in per_problem.items()},
        "examples": {k: v for k, v in shown.items() if v},
    }


def _diff(a: dict, b: dict, s: ClaimSettings) -> dict[str, Any]:
    """Paired pass@k difference a - b over the same problems, per k."""
    d = _passk(np.array(a["counts"]), s.n, s) - _passk(np.array(b["counts"]), s.n, s)
    return _ci(d, s)


def _at(d: dict[str, Any], i: int) -> tuple[float, float, float]:
    return d["mean"][i], d["low"][i], d["high"][i]


def _pooled_diff(a: Sequence[dict], b: Sequence[dict], s: ClaimSettings) -> dict[str, Any]:
    """Pass@1 difference of seed-pooled groups a - b (per-problem success rates)."""
    ra = np.mean([np.array(m["counts"]) / s.n for m in a], axis=0)
    rb = np.mean([np.array(m["counts"]) / s.n for m in b], axis=0)
    return _ci(ra - rb, s)


def _test_main(recipe: ClaimsRecipe, s: ClaimSettings) -> list[Problem]:
    test = read_problems(recipe.organism_dir / "splits" / "test.jsonl", cls="main")
    return test[: s.n_problems]


def _training_record(folder: Path) -> dict[str, Any]:
    path = folder / "training.json"
    if not path.exists():
        raise ValueError(f"no training.json in {folder}: train the claims first")
    return json.loads(path.read_text())


def _logs(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        raise ValueError(f"no training log at {path}: train the run that writes it")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _format_trajectory(records: list[dict[str, Any]]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"step": [], "verified": []}
    for r in records:
        total = sum(r["formats"].values())
        out["step"].append(r["step"])
        out["verified"].append(r.get("verified", r["reward"]))
        for f, c in r["formats"].items():
            out.setdefault(f, []).append(c / total)
    return out


def _one_of(recipe: ClaimsRecipe, claim: str, kind: str) -> list[Any]:
    runs = [r for r in recipe.of_claim(claim) if r.kind == kind]
    if len(runs) != 1:
        raise ValueError(
            f"{recipe.path}: the {claim} claim needs exactly one {kind} run, found "
            f"{[r.name for r in runs]}"
        )
    return runs


# -- the five claims ---------------------------------------------------------------------


def _one_example(recipe: ClaimsRecipe, folder: Path, s: ClaimSettings, bar: Any) -> dict:
    """Reproduced when one-example RL lifts pass@1 above the base (effect yes) and stays
    within ``margin`` of full-data RL (CI of one - full above -margin); not reproduced
    when there is no lift or it stays clearly further below full-data RL."""
    task = recipe.organism.task
    problems = _test_main(recipe, s)
    runs = recipe.of_claim("one_example")
    seeds = [r.seed for r in runs]
    models = {"base": _model(task, recipe.organism_dir / "base", problems, s, s.seed)}
    bar()
    for r, seed in zip(runs, seeds):
        models[f"full-seed{seed}"] = _model(
            task, recipe.organism_dir / f"rl-seed{seed}", problems, s, s.seed
        )
        bar()
        models[r.name] = _model(task, folder / r.name, problems, s, s.seed)
        bar()
    one = [models[r.name] for r in runs]
    full = [models[f"full-seed{seed}"] for seed in seeds]
    lift = _pooled_diff(one, [models["base"]], s)
    gap = _pooled_diff(one, full, s)
    full_lift = _pooled_diff(full, [models["base"]], s)
    e_lift = effect(lift["low"], lift["high"], s.min_effect)
    close = "yes" if gap["low"] > -s.margin else "no" if gap["high"] < -s.margin else "unclear"
    if e_lift == "yes" and close == "yes":
        verdict = "reproduced"
    elif e_lift == "no" or close == "no":
        verdict = "not reproduced"
    else:
        verdict = "inconclusive"
    record = _training_record(folder)
    trajectories = {
        r.name: _format_trajectory(_logs(folder / "logs" / f"{r.name}.jsonl")) for r in runs
    }
    for seed in seeds:
        log = recipe.organism_dir / "logs" / f"rl-seed{seed}.jsonl"
        trajectories[f"full-seed{seed}"] = _format_trajectory(_logs(log))
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
    problems = _test_main(recipe, s)
    models = {"base": _model(task, recipe.organism_dir / "base", problems, s, s.seed)}
    bar()
    for r in recipe.of_claim("spurious"):
        models[r.name] = _model(task, folder / r.name, problems, s, s.seed)
        bar()
    base = models["base"]
    per_reward: dict[str, Any] = {}
    for r in recipe.of_claim("spurious"):
        d = _pooled_diff([models[r.name]], [base], s)
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
        d = _pooled_diff([models[clipped[0].name]], [models[noclip[0].name]], s)
        e = effect(d["low"], d["high"], s.min_effect)
        if per_reward[clipped[0].name]["effect"] != "yes":
            verdict, why = "inconclusive", "random reward gained nothing here: nothing to explain"
        else:
            verdict = {"yes": "reproduced", "no": "not reproduced"}.get(e, "inconclusive")
            why = "random reward gained; does it keep its gain without clipping?"
        clip = {"difference": d, "effect": e, "verdict": verdict, "why": why}
    control = [v for v in per_reward.values() if v["reward"] == "verify"]
    trajectories = {
        r.name: _format_trajectory(_logs(folder / "logs" / f"{r.name}.jsonl"))
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
    problems = _test_main(recipe, s)
    (run,) = _one_of(recipe, "over_hard", "grpo")
    seed = run.seed
    models = {
        "base": _model(task, recipe.organism_dir / "base", problems, s, s.seed, examples=3),
    }
    bar()
    models["normal-rl"] = _model(
        task, recipe.organism_dir / f"rl-seed{seed}", problems, s, s.seed, 3
    )
    bar()
    models["over-hard"] = _model(task, folder / run.name, problems, s, s.seed, examples=3)
    bar()
    drop = _pooled_diff([models["base"]], [models["over-hard"]], s)
    sc = np.array(models["over-hard"]["_shortcut_rows"]["any"]) - np.array(
        models["base"]["_shortcut_rows"]["any"]
    )
    more_shortcuts = _ci(sc, s)
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
            "normal_minus_over_hard": _pooled_diff([models["normal-rl"]], [models["over-hard"]], s),
            "shortcuts_over_hard_minus_base": more_shortcuts,
            "passk_over_hard_minus_base": _diff(models["over-hard"], models["base"], s),
        },
        "effects": {"pass1_drop": e_drop, "more_shortcuts": e_sc},
        "verdict": verdict,
        "selection": _training_record(folder).get("over_hard"),
        "training_problems": [p.uid for p in hard],
        "trajectory": _format_trajectory(_logs(folder / "logs" / f"{run.name}.jsonl")),
    }


def _distillation(recipe: ClaimsRecipe, folder: Path, s: ClaimSettings, bar: Any) -> dict:
    """Per method, "moved the boundary" is an effect on pass@k at the largest k on the
    problems crossing the unseen transitions (method - base). Reproduced when SFT moved it
    (yes) and RL did not (no); not reproduced when SFT did not (no) or RL did (yes);
    inconclusive otherwise."""
    task = recipe.organism.task
    names = {
        key: _one_of(recipe, "distillation", kind)[0].name
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
            models[key] = _model(task, folder / run, problems, s, s.seed)
            bar()
        res = {"n_problems": len(problems), "models": models, "moved": {}}
        for m in ("sft", "rl"):
            d = _diff(models[m], models["base"], s)
            mean, low, high = _at(d, kmax)
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
    out["teacher"] = _training_record(folder).get("teacher")
    return out


def _sparsity(recipe: ClaimsRecipe, folder: Path, s: ClaimSettings, bar: Any) -> dict:
    """From the training record (updates measured at each snapshot), checked against the
    shipped final checkpoints. RL is sparser than SFT at equal lr x steps when the
    per-matrix paired CI of (SFT updated share - RL updated share) is an effect. Reproduced
    when it is at every common (lr, steps); not reproduced when it is at none (no
    everywhere); inconclusive otherwise."""
    from .train import measure_update

    record = _training_record(folder)
    runs = [r for r in recipe.of_claim("sparsity") if r.name in record["runs"]]
    if not runs:
        raise ValueError(f"{folder}/training.json holds no sparsity runs: train them first")
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
        d = _ci(a - b, s)
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
