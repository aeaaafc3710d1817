"""Measure the organism: every number of its card, written to ``results.json``.

:func:`evaluate` samples ``n`` completions per test problem from the base and each RL seed,
and measures pass@1 and pass@k with bootstrap CIs per class, the crossover k* and coverage
split (base vs each RL seed), per-strategy accuracy (teacher-forced and sampled), the
format shares over RL steps, and update sparsity and seed overlap of the weights.
:func:`write_card` renders ``README.md`` from ``results.json`` (and ``training.json``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..measures.formats import format_shares_from_log
from ..measures.passk import coverage_split, crossover, passk_curve, sampling_efficiency_gap
from ..measures.weightdiff import seed_overlap, update_rank, update_sparsity
from .generate import sample_completions
from .measure import profile
from .pretrain import competence
from .recipe import load_recipe
from .store import load_splits, organism_folder
from .task import FORMATS
from .when import wrong_chain_share
from .when_design import design_checks

__all__ = ["evaluate", "write_card"]


def _curve_dict(curve: Any) -> dict[str, Any]:
    return {
        "ks": curve.ks.tolist(),
        "mean": curve.mean.tolist(),
        "low": curve.low.tolist(),
        "high": curve.high.tolist(),
        "n_problems": curve.n_problems,
        "n_samples": int(curve.n_samples) if np.ndim(curve.n_samples) == 0 else None,
    }


def _cross_dict(c: Any) -> dict[str, Any]:
    return {
        "ks": c.ks.tolist(),
        "diff": c.diff.tolist(),
        "diff_low": c.diff_low.tolist(),
        "diff_high": c.diff_high.tolist(),
        "k_star": c.k_star,
        "ci_low": c.ci_low,
        "ci_high": c.ci_high,
        "p_exists": c.p_exists,
        "note": c.note,
    }


def _log_summary(path: Path, threshold: float) -> dict[str, Any]:
    shares = format_shares_from_log(path, labels=[*FORMATS, "OTHER"])
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    steps = shares.steps.tolist()
    marks = sorted(
        {s for s in (0, 5, 10, 20, 30, 50, 75, 100, 150, 200, 300, 400, 600, 800) if s <= steps[-1]}
        | {steps[-1]}
    )

    def window(key: str, s: int) -> float | None:
        vals = [r[key] for r in records if abs(r["step"] - s) <= 2 and r.get(key) is not None]
        return float(np.mean(vals)) if vals else None

    table = []
    for s in marks:
        i = steps.index(s)
        lo, hi = max(0, i - 2), min(len(steps), i + 3)  # 5-step window: 640 rollouts
        table.append(
            {
                "step": s,
                "shares": {
                    lab: float(shares.counts[lo:hi, j].sum() / shares.counts[lo:hi].sum())
                    for j, lab in enumerate(shares.labels)
                },
                "reward": window("reward", s),
                "checks_per_step": window("checks_per_step", s),
                "step_acc": window("step_acc", s),
                "mean_length": window("mean_length", s),
            }
        )
    collapse = shares.collapse_step(threshold)
    last = shares.dominant()[-1]
    return {
        "threshold": threshold,
        "collapse_step": collapse,
        "collapsed_onto": shares.dominant()[steps.index(collapse)]
        if collapse is not None
        else None,
        "dominant_last": last,
        "entropy_first": float(shares.entropy[0]),
        "entropy_last": float(shares.entropy[-1]),
        "table": table,
        "n_steps": len(steps),
        "seconds": records[-1].get("seconds"),
    }


def _to_jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _to_jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_to_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, float) and not np.isfinite(x):
        return None
    return x


def evaluate(
    organism_dir: str | os.PathLike[str] | None = None,
    out_path: str | os.PathLike[str] | None = None,
    *,
    n: int | None = None,
    max_problems: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Measure the organism in ``organism_dir`` (default: the shipped one).

    ``n`` (samples per problem) and ``max_problems`` (per class) shrink the run for smoke
    tests; by default the recipe's ``[eval]`` settings and the whole test split are used.
    Writes ``out_path`` (default ``<organism_dir>/results.json``) atomically and returns it.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    root = organism_folder(organism_dir)
    recipe = load_recipe(root / "recipe.toml")
    task, E = recipe.task, recipe.eval
    n = E.n if n is None else int(n)
    ks = [k for k in E.ks if k <= n]
    if not ks:
        raise ValueError(f"n={n} is below every k in [eval] ks={E.ks}: raise n")
    t0 = time.perf_counter()
    classes = list(task.classes)
    test = {c: load_splits("test", c, root) for c in classes}
    dev = {c: load_splits("dev", c, root) for c in classes}
    if max_problems is not None:
        test = {c: ps[:max_problems] for c, ps in test.items()}
        dev = {c: ps[:max_problems] for c, ps in dev.items()}
    classes = [c for c in classes if test[c]]
    names = ["base"] + [f"rl-seed{s}" for s in recipe.rl_seeds]
    results: dict[str, Any] = {"models": {}, "settings": {}}
    counts: dict[str, dict[str, np.ndarray]] = {}
    for name in names:
        path = root / name
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
        tok = AutoTokenizer.from_pretrained(path)
        rec: dict[str, Any] = {"classes": {}}
        counts[name] = {}
        for cls in classes:
            probs = test[cls]
            if progress:
                print(f"sampling {name} / {cls}: {len(probs)} problems x {n}", flush=True)
            comps = sample_completions(
                model,
                task,
                probs,
                n,
                tokenizer=tok,
                temperature=E.temperature,
                seed=E.seed,
                batch_size=E.batch_size,
                progress=progress,
            )
            c = np.array([sum(task.verify(p, x) == 1.0 for x in cs) for p, cs in zip(probs, comps)])
            counts[name][cls] = c
            greedy = sample_completions(
                model, task, probs + dev[cls], 1, tokenizer=tok, temperature=0.0, seed=E.seed
            )
            g = [task.verify(p, cs[0]) for p, cs in zip(probs + dev[cls], greedy)]
            by_hops: dict[int, list[float]] = {}
            for p, ci in zip(probs, c):
                by_hops.setdefault(p.hops, []).append(ci / n)
            rec["classes"][cls] = {
                "profile": profile(task, probs, comps),
                "greedy_test": float(np.mean(g[: len(probs)])),
                "greedy_dev": float(np.mean(g[len(probs) :])) if dev[cls] else None,
                "pass1_by_hops": {int(h): float(np.mean(v)) for h, v in sorted(by_hops.items())},
                "counts": c.tolist(),
            }
            if task.strict or task.n_hard:
                rec["classes"][cls]["chains"] = wrong_chain_share(task, probs, comps)
        lo, hi = task.hop_range("main")
        rec["teacher_forced"] = {
            "main_hops": competence(
                model,
                task,
                dataclasses.replace(recipe.pretrain.corpus, hops=(lo, hi)),
                n_traces=512,
                seed=7,
            ),
            "corpus_hops": competence(model, task, recipe.pretrain.corpus, n_traces=512, seed=8),
        }
        results["models"][name] = rec
        del model
    all_counts = {name: np.concatenate([counts[name][c] for c in classes]) for name in names}
    curves: dict[str, dict[str, Any]] = {}
    for name in names:
        curves[name] = {}
        for cls, c in [*((c, counts[name][c]) for c in classes), ("all", all_counts[name])]:
            curve = passk_curve(c, n, ks, n_boot=E.n_boot, seed=E.seed)
            curves[name][cls] = curve
            results["models"][name].setdefault("passk", {})[cls] = _curve_dict(curve)
    results["comparisons"] = {}
    for name in names[1:]:
        comp: dict[str, Any] = {}
        for cls in [*classes, "all"]:
            b = all_counts["base"] if cls == "all" else counts["base"][cls]
            r = all_counts[name] if cls == "all" else counts[name][cls]
            comp[cls] = {
                "crossover": _cross_dict(crossover(b, r, n, ks, n_boot=E.n_boot, seed=E.seed)),
                "coverage": coverage_split(b, r),
                "efficiency_gap": sampling_efficiency_gap(curves["base"][cls], curves[name][cls]),
            }
        results["comparisons"][name] = comp
    logs = {}
    for s in recipe.rl_seeds:
        log = root / "logs" / f"rl-seed{s}.jsonl"
        if log.exists():
            logs[f"rl-seed{s}"] = _log_summary(log, E.collapse_threshold)
    results["formats_over_rl"] = logs
    weights: dict[str, Any] = {"sparsity": {}, "overlap": {}, "rank": {}}
    base = root / "base"
    for name in names[1:]:
        weights["sparsity"][name] = {}
        for dtype, tol in (("bf16", E.bf16_tol), ("fp32", E.fp32_tol)):
            sp = update_sparsity(base, root / name, tol=tol, dtype=dtype)
            weights["sparsity"][name][dtype] = {
                "tol": tol,
                "sparsity": sp.sparsity,
                "updated_share": sp.updated_share,
                "n_params": sp.n_params,
                "per_layer": {str(lay.layer): lay.updated_share for lay in sp.per_layer},
            }
        ranks = update_rank(base, root / name)
        weights["rank"][name] = {"mean": float(np.mean(list(ranks.values()))), "per_matrix": ranks}
    if len(names) >= 3:
        for dtype, tol in (("bf16", E.bf16_tol), ("fp32", E.fp32_tol)):
            ov = seed_overlap(base, root / names[1], root / names[2], tol=tol, dtype=dtype)
            weights["overlap"][dtype] = {
                "tol": tol,
                "pair": names[1:3],
                "overlap_1": ov.overlap_1,
                "overlap_2": ov.overlap_2,
                "chance_1": ov.chance_1,
                "chance_2": ov.chance_2,
                "n_both": ov.n_both,
                "n_params": ov.n_params,
            }
    results["weights"] = weights
    if task.n_hard and "main" in test:
        # an organism built for "when": the design checks of its card
        results["when"] = design_checks(
            root,
            recipe,
            test["main"],
            {name: counts[name]["main"] for name in names},
            n,
            n_traces=256 if max_problems is None else 16,  # smoke runs: a few traces
            n_boot=E.n_boot,
            seed=E.seed,
            progress=progress,
        )
    results["settings"] = {
        "n": n,
        "ks": ks,
        "temperature": E.temperature,
        "top_p": 1.0,
        "max_new_tokens": task.budget,
        "seed": E.seed,
        "n_boot": E.n_boot,
        "problems_per_class": {c: len(test[c]) for c in classes},
        "classes": {c: list(task.hop_range(c)) for c in classes},
        "seconds": time.perf_counter() - t0,
        "torch_threads": torch.get_num_threads(),
    }
    out = Path(out_path) if out_path is not None else root / "results.json"
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(_to_jsonable(results), indent=1))
    os.replace(tmp, out)
    return results


# ----------------------------------------------------------------------------- the card


def write_card(
    organism_dir: str | os.PathLike[str] | None = None,
    results_path: str | os.PathLike[str] | None = None,
    card_path: str | os.PathLike[str] | None = None,
) -> str:
    """Write the organism card (``README.md``) from ``results.json`` and ``training.json``."""
    from .cards.sharpening import render

    root = organism_folder(organism_dir)
    rpath = Path(results_path) if results_path is not None else root / "results.json"
    if not rpath.exists():
        raise ValueError(f"no results at {rpath}: run rlvr.organism.evaluate first")
    results = json.loads(rpath.read_text())
    tpath = root / "training.json"
    training = json.loads(tpath.read_text()) if tpath.exists() else {}
    recipe = load_recipe(root / "recipe.toml")
    if "when" in results:  # an organism with hard states: its own card
        from .cards.when import render_when

        text = render_when(recipe, training, results)
    else:
        text = render(recipe, training, results)
    out = Path(card_path) if card_path is not None else root / "README.md"
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, out)
    return text
