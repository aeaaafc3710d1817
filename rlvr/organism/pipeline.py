"""Reproduce the organism from its recipe: splits, base, gate, RL seeds (and the card).

The files it writes are laid out as :mod:`.store` reads them."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .evaluate import evaluate as run_eval
from .evaluate import write_card
from .generate import sample_completions
from .grpo import grpo_train
from .measure import profile
from .pretrain import competence, pretrain
from .problem_files import write_problems
from .recipe import Recipe, load_recipe
from .store import SPLITS, save_checkpoint
from .task import Problem

__all__ = ["gate", "train"]


_save_atomic = save_checkpoint  # the former private name, still imported from here


def gate(model: Any, recipe: Recipe, dev: list[Problem], seed: int = 0) -> dict[str, Any]:
    """Base competence before RL: teacher-forced accuracies and a sampled profile on ``dev``.

    ``passed`` says whether the recipe's thresholds hold.
    """
    task = recipe.task
    tf = competence(model, task, recipe.pretrain.corpus, n_traces=1024, seed=seed + 1)
    main = [p for p in dev if p.cls == "main"] or dev
    comps = sample_completions(
        model, task, main, recipe.gate.n_dev_samples, seed=seed, batch_size=recipe.eval.batch_size
    )
    prof = profile(task, main, comps)
    g = recipe.gate
    checks = {
        "step_acc": tf["step_acc"] >= g.min_step_acc,
        "hard_check_acc": tf["hard_check_acc"] >= g.min_hard_check_acc,
        "pass1": prof["pass1"] >= g.min_pass1,
    }
    return {
        "teacher_forced": tf,
        "sampled_main_dev": prof,
        "checks": checks,
        "passed": all(checks.values()),
    }


def _grpo_job(args: tuple[Any, ...]) -> dict[str, Any]:
    threads, *job = args
    if threads is not None:
        torch.set_num_threads(int(threads))
    return grpo_train(*job, progress=False)


def train(
    recipe_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    progress: bool = True,
    evaluate: bool = True,
    threads: int | None = 1,
    rl_workers: int = 1,
) -> dict[str, Any]:
    """Train the organism from scratch into ``out_dir`` and (by default) write its card.

    Writes ``recipe.toml`` (a copy), ``splits/{train,dev,test}.jsonl``, ``base/``,
    ``rl-seed<N>/`` per RL seed, ``logs/rl-seed<N>.jsonl`` (format counts and reward per RL
    step), ``training.json`` (times, steps, the gate) and, with ``evaluate``,
    ``results.json`` and ``README.md``. ``threads`` sets ``torch.set_num_threads`` for this
    process (one thread keeps shared machines responsive); None leaves it alone.
    ``rl_workers`` > 1 runs the RL seeds in that many processes at once (each with
    ``threads`` threads): the same runs, less wall time where cores are free.
    Raises RuntimeError when the base fails the recipe's competence gate.
    """
    recipe_path = Path(recipe_path)
    recipe = load_recipe(recipe_path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if rl_workers < 1:
        raise ValueError(f"rl_workers={rl_workers} must be >= 1")
    if threads is not None:
        torch.set_num_threads(int(threads))
    if recipe_path.resolve() != (out / "recipe.toml").resolve():
        shutil.copyfile(recipe_path, out / "recipe.toml")
    task = recipe.task
    t_all = time.perf_counter()

    splits = task.splits(recipe.split_seed, recipe.split_sizes)
    (out / "splits").mkdir(exist_ok=True)
    for name in SPLITS:
        write_problems(out / "splits" / f"{name}.jsonl", splits[name])
    train_main = [p for p in splits["train"] if p.cls == "main"]
    if not train_main:
        raise ValueError("the recipe's splits leave no 'main' train problems for RL")

    def log(msg: str) -> None:
        if progress:
            print(msg, flush=True)

    log(f"pretraining {recipe.pretrain.steps} steps ...")
    model, tokenizer, hist = pretrain(
        task,
        recipe.model,
        recipe.pretrain,
        progress=progress,
        on_eval=lambda s, c: log(
            f"  step {s}: step_acc {c['step_acc']:.3f} hard_check_acc {c['hard_check_acc']:.3f} "
            f"stop_acc {c['stop_acc']:.3f} ({c['seconds']:.0f}s)"
        ),
    )
    pre_record = {
        "steps": recipe.pretrain.steps,
        "seconds": hist["seconds"],
        "final_loss": float(np.mean(hist["loss"][-50:])),
        "evals": hist["evals"],
        "n_params": int(sum(p.numel() for p in model.parameters())),
    }
    save_checkpoint(model, tokenizer, out / "base", {"pretrain": pre_record})
    g = gate(model, recipe, splits["dev"], seed=recipe.eval.seed)
    tf, sp = g["teacher_forced"], g["sampled_main_dev"]
    log(
        f"gate: step_acc {tf['step_acc']:.3f} hard_check_acc {tf['hard_check_acc']:.3f} "
        f"(copies {tf['hard_check_copy']:.3f}) stop_acc {tf['stop_acc']:.3f}; sampled main dev "
        f"pass@1 {sp['pass1']:.3f} formats "
        + " ".join(f"{k} {v:.2f}" for k, v in sp["formats"].items())
    )
    record: dict[str, Any] = {"pretrain": pre_record, "gate": g, "rl": []}
    if not g["passed"]:
        (out / "training.json").write_text(json.dumps(record, indent=1))
        failed = [k for k, ok in g["checks"].items() if not ok]
        raise RuntimeError(
            f"the base failed the competence gate on {failed}: pretrain longer "
            "([pretrain] steps) or lower the [gate] thresholds in the recipe"
        )
    (out / "logs").mkdir(exist_ok=True)
    del model
    jobs = [
        (
            task,
            out / "base",
            out / f"rl-seed{seed}",
            train_main,
            recipe.rl,
            seed,
            out / "logs" / f"rl-seed{seed}.jsonl",
        )
        for seed in recipe.rl_seeds
    ]
    if rl_workers > 1 and len(jobs) > 1:
        # each seed in its own process (same settings and seeds as one after the other)
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        log(f"GRPO seeds {list(recipe.rl_seeds)} in {rl_workers} processes ...")
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(rl_workers, len(jobs)), mp_context=ctx) as pool:
            for res in pool.map(_grpo_job, [(threads, *job) for job in jobs]):
                record["rl"].append(res)
                log(f"  seed {res['seed']} done in {res['seconds']:.0f}s")
    else:
        for job in jobs:
            log(f"GRPO seed {job[5]}: {recipe.rl.steps} steps ...")
            res = grpo_train(*job, progress=progress)
            record["rl"].append(res)
            log(f"  done in {res['seconds']:.0f}s")
    record["seconds_total_training"] = time.perf_counter() - t_all
    record["torch_threads"] = torch.get_num_threads()
    (out / "training.json").write_text(json.dumps(record, indent=1))
    if evaluate:
        run_eval(out, out / "results.json", progress=progress)
        write_card(out)
    return record
