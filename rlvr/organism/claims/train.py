"""Train every run of a claims recipe into a claims folder (resumable, run by run).

Writes ``problems/{one,over_hard}.jsonl`` (the chosen problem sets), ``teacher-traces.jsonl``
(the distillation data), one checkpoint folder per run, ``logs/<run>.jsonl`` (per GRPO
generation batch: formats, reward trained on, verified reward) and ``training.json``: per
run its settings, wall time and, for runs with snapshots, the update measurements at each
snapshot (sparsity in bf16 and fp32, rank) and the overlap of updates across seeds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import re
import shutil
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...measures.weightdiff import seed_overlap, update_rank, update_sparsity
from ..generate import sample_completions
from ..grpo import grpo_train
from ..pretrain import pretrain
from ..problem_files import read_problems, write_problems
from ..sft import sft_train
from ..task import Problem
from .evidence import solved_counts
from .recipe import ClaimRun, ClaimsRecipe, load_claims

__all__ = ["measure_update", "remeasure", "train_claims"]

BF16_TOL = 1e-5  # the organism card's bf16 tolerance (Mukherjee et al.'s)


def _atomic_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


@contextlib.contextmanager
def _record(path: Path) -> Iterator[dict[str, Any]]:
    """``training.json`` read, changed and written under a lock (two processes may train
    runs of one folder at once)."""
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            record = json.loads(path.read_text()) if path.exists() else {"runs": {}}
            yield record
            _atomic_json(path, record)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _load_model(path: Path) -> Any:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()


def select_one(recipe: ClaimsRecipe, train: list[Problem]) -> tuple[Problem, dict[str, Any]]:
    """The main train problem with the largest base pass@1 variance (ties: split order)."""
    s = recipe.select
    task = recipe.organism.task
    model = _load_model(recipe.organism_dir / "base")
    comps = sample_completions(model, task, train, s.one_n, seed=s.seed)
    p1 = solved_counts(task, train, comps) / s.one_n
    best = int(np.argmax(p1 * (1 - p1)))
    info = {
        "rule": f"max p(1 - p) of base pass@1 over {s.one_n} samples among {len(train)} "
        "main train problems",
        "problem": train[best].to_dict(),
        "base_pass1": float(p1[best]),
        "train_mean_pass1": float(p1.mean()),
        "repeat": s.one_repeat,
    }
    return train[best], info


def select_over_hard(recipe: ClaimsRecipe) -> tuple[list[Problem], dict[str, Any]]:
    """Problems with hops in ``over_hard_hops`` on which the base solves 0 of n samples."""
    s = recipe.select
    task = recipe.organism.task
    lo, hi = s.over_hard_hops
    pool = [Problem(st, k, "over_hard") for k in range(lo, hi + 1) for st in task.states]
    order = np.random.default_rng([s.seed, 2605]).permutation(len(pool))
    pool = [pool[i] for i in order[: s.over_hard_pool]]
    model = _load_model(recipe.organism_dir / "base")
    comps = sample_completions(model, task, pool, s.over_hard_n, seed=s.seed)
    counts = solved_counts(task, pool, comps)
    kept = [p for p, c in zip(pool, counts) if c == 0]
    formats: dict[str, int] = {}
    for cs in comps:
        for c in cs:
            f = task.format_of(c)
            formats[f] = formats.get(f, 0) + 1
    info = {
        "rule": f"hops {lo}-{hi} (beyond the corpus's {recipe.organism.pretrain.corpus.hops}), "
        f"base solves 0 of {s.over_hard_n} samples",
        "pool": len(pool),
        "kept": len(kept),
        "pool_pass1": float(counts.sum() / (len(pool) * s.over_hard_n)),
        "pool_solved_any": int((counts > 0).sum()),
        "pool_formats": {k: v / (len(pool) * s.over_hard_n) for k, v in sorted(formats.items())},
    }
    return kept, info


def teacher_traces(recipe: ClaimsRecipe, train: list[Problem]) -> tuple[list[dict], dict]:
    """The teacher's verified-correct completions of the train problems."""
    t = recipe.teacher
    task = recipe.organism.task
    model = _load_model(recipe.teacher_dir())
    comps = sample_completions(model, task, train, t.n, temperature=t.temperature, seed=t.seed)
    rows = [
        {**p.to_dict(), "completion": c}
        for p, cs in zip(train, comps)
        for c in cs
        if task.verify(p, c) == 1.0
    ]
    info = {
        "teacher": t.checkpoint,
        "samples": len(train) * t.n,
        "kept": len(rows),
        "problems_covered": len({(r["start"], r["hops"]) for r in rows}),
        "problems": len(train),
    }
    return rows, info


def measure_update(start: Path, end: Path, tol: float = BF16_TOL) -> dict[str, Any]:
    """Update sparsity (bf16 at ``tol``, fp32 exact) and rank of ``end - start``; also the
    bf16 updated share of every parameter tensor (``per_matrix``)."""
    bf16 = update_sparsity(start, end, tol=tol, dtype="bf16")
    fp32 = update_sparsity(start, end, tol=0.0, dtype="fp32")
    ranks = update_rank(start, end, dtype="fp32")
    return {
        "bf16_updated": bf16.updated_share,
        "fp32_updated": fp32.updated_share,
        "rank_mean": float(np.mean(list(ranks.values()))),
        "rank_min": float(np.min(list(ranks.values()))),
        "per_matrix": {m.name: m.updated_share for m in bf16.per_matrix},
    }


def remeasure(recipe_path: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> None:
    """Measure again the updates of every trained run whose weights are on disk (the final
    checkpoint, and the snapshots where ``.snapshots`` still holds them), and the overlaps."""
    recipe = load_claims(recipe_path)
    out = Path(out_dir)
    snap_root = out / ".snapshots"
    with _record(out / "training.json") as record:
        for run in recipe.runs:
            entry = record["runs"].get(run.name)
            if entry is None or run.kind == "pretrain":
                continue
            start = recipe.organism_dir / "base" if run.start == "base" else out / run.start
            entry["update"] = measure_update(start, out / run.name)
            snaps = snap_root / run.name
            if run.snapshots and snaps.exists():
                entry["updates"] = {
                    str(s): measure_update(start, snaps / f"step-{s}") for s in run.snapshots
                }
        record["overlap"] = _overlaps(recipe, record, snap_root, out)


def _rewrite_paths(text: str, src: Path, dest: Path) -> str:
    """The recipe text with its relative ``organism``/``checkpoint`` paths re-rooted."""

    def fix(m: re.Match[str]) -> str:
        old = (src.parent / m.group(2)).resolve()
        return f'{m.group(1)}"{os.path.relpath(old, dest.parent)}"'

    return re.sub(r'^((?:organism|checkpoint)\s*=\s*)"([^"]+)"', fix, text, flags=re.M)


def train_claims(
    recipe_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    only: Sequence[str] | None = None,
    progress: bool = True,
    threads: int | None = 1,
    force: bool = False,
) -> dict[str, Any]:
    """Train the runs of a claims recipe (all, or those named in ``only``) into ``out_dir``.

    A run whose checkpoint and record exist is skipped unless ``force``. Returns the
    ``training.json`` record.
    """
    recipe = load_claims(recipe_path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if threads is not None:
        torch.set_num_threads(int(threads))
    runs = list(recipe.runs)
    if only:
        missing = [n for n in only if n not in {r.name for r in runs}]
        if missing:
            raise ValueError(f"no runs {missing} in {recipe.path}: use {[r.name for r in runs]}")
        runs = [r for r in runs if r.name in set(only)]
    dest_recipe = out / "recipe.toml"
    if dest_recipe.resolve() != recipe.path.resolve():
        dest_recipe.write_text(_rewrite_paths(recipe.path.read_text(), recipe.path, dest_recipe))
    record_path = out / "training.json"
    with _record(record_path) as record:
        record["torch_threads"] = torch.get_num_threads()
    task = recipe.organism.task
    splits = task.splits(recipe.organism.split_seed, recipe.organism.split_sizes)
    train = [p for p in splits["train"] if p.cls == "main"]

    def log(msg: str) -> None:
        if progress:
            print(msg, flush=True)

    (out / "problems").mkdir(exist_ok=True)
    wanted_sets = {r.problems for r in runs if r.kind == "grpo"}
    if "one" in wanted_sets and not (out / "problems" / "one.jsonl").exists():
        log("choosing the one example ...")
        one, info = select_one(recipe, train)
        write_problems(out / "problems" / "one.jsonl", [one])
        with _record(record_path) as record:
            record["one_example"] = info
    if "over_hard" in wanted_sets and not (out / "problems" / "over_hard.jsonl").exists():
        log("choosing the over-hard problems ...")
        hard, info = select_over_hard(recipe)
        if not hard:
            raise RuntimeError(f"no over-hard problems: the base solved every one ({info})")
        write_problems(out / "problems" / "over_hard.jsonl", hard)
        with _record(record_path) as record:
            record["over_hard"] = info
    if any(r.kind == "sft" for r in runs) and not (out / "teacher-traces.jsonl").exists():
        log("sampling the teacher's traces ...")
        rows, info = teacher_traces(recipe, train)
        tmp = out / "teacher-traces.jsonl.tmp"
        tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
        os.replace(tmp, out / "teacher-traces.jsonl")
        with _record(record_path) as record:
            record["teacher"] = info

    snap_root = out / ".snapshots"
    for run in runs:
        dest = out / run.name
        with _record(record_path) as record:
            done = run.name in record["runs"]
        if not force and (dest / "config.json").exists() and done:
            log(f"{run.name}: done already")
            continue
        start = recipe.organism_dir / "base" if run.start == "base" else out / run.start
        tmp = out / f"{run.name}.tmp"
        if tmp.exists():
            shutil.rmtree(tmp)
        snaps = snap_root / run.name
        if snaps.exists():
            shutil.rmtree(snaps)
        log(f"{run.name}: {run.kind} ...")
        cpu0 = time.process_time()
        res = _train_one(recipe, run, start, tmp, out, train, snaps, progress)
        res["cpu_seconds"] = time.process_time() - cpu0
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
        entry: dict[str, Any] = {
            "claim": run.claim,
            "kind": run.kind,
            "start": run.start,
            "problems": run.problems,
            "seed": run.seed,
            "settings": _settings(run),
            **res,
        }
        if run.snapshots:
            entry["updates"] = {
                str(s): measure_update(start, snaps / f"step-{s}") for s in run.snapshots
            }
        if run.kind != "pretrain":
            entry["update"] = measure_update(start, dest)
        with _record(record_path) as record:
            record["runs"][run.name] = entry
        log(f"{run.name}: {res['seconds']:.0f}s")
    with _record(record_path) as record:
        record["overlap"] = _overlaps(recipe, record, snap_root, out)
        record["seconds_total"] = sum(r.get("seconds", 0.0) for r in record["runs"].values())
    from .card import write_claims_card

    write_claims_card(out)
    return record


def _settings(run: ClaimRun) -> dict[str, Any]:
    if run.rl is not None:
        return dataclasses.asdict(run.rl)
    if run.sft is not None:
        return dataclasses.asdict(run.sft)
    return {"pretrain": run.pretrain, "corpus": run.corpus}


def _train_one(
    recipe: ClaimsRecipe,
    run: ClaimRun,
    start: Path,
    tmp: Path,
    out: Path,
    train: list[Problem],
    snaps: Path,
    progress: bool,
) -> dict[str, Any]:
    task = recipe.organism.task
    if run.kind == "pretrain":
        from ..pipeline import gate
        from ..store import save_checkpoint

        org = recipe.organism
        corpus = dataclasses.replace(org.pretrain.corpus, **_tuples(run.corpus))
        spec = dataclasses.replace(org.pretrain, **{**run.pretrain, "corpus": corpus})
        t0 = time.perf_counter()
        model, tokenizer, hist = pretrain(task, org.model, spec, progress=progress)
        seconds = time.perf_counter() - t0
        dev = read_problems(recipe.organism_dir / "splits" / "dev.jsonl")
        g = gate(model, dataclasses.replace(org, pretrain=spec), dev, seed=org.eval.seed)
        save_checkpoint(model, tokenizer, tmp, {"pretrain": {"steps": spec.steps}})
        return {
            "seconds": seconds,
            "steps": spec.steps,
            "final_loss": float(np.mean(hist["loss"][-50:])),
            "gate": g,
        }
    if run.kind == "sft":
        rows = [
            json.loads(line) for line in (out / "teacher-traces.jsonl").read_text().splitlines()
        ]
        data = [(Problem.from_dict(r), r["completion"]) for r in rows]
        return sft_train(
            task, start, tmp, data, run.sft, run.seed, snapshots=run.snapshots, snapshot_dir=snaps
        )
    if run.problems == "train":
        problems = train
    else:
        chosen = read_problems(out / "problems" / f"{run.problems}.jsonl")
        problems = chosen * recipe.select.one_repeat if run.problems == "one" else chosen
    (out / "logs").mkdir(exist_ok=True)
    return grpo_train(
        task,
        start,
        tmp,
        problems,
        run.rl,
        run.seed,
        out / "logs" / f"{run.name}.jsonl",
        progress=progress,
        snapshots=run.snapshots,
        snapshot_dir=snaps,
    )


def _tuples(table: dict[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in table.items()}


def _overlaps(
    recipe: ClaimsRecipe, record: dict[str, Any], snap_root: Path, out: Path
) -> list[dict[str, Any]]:
    """Seed overlap (bf16) of runs that differ only in their seed, at each common snapshot."""
    groups: dict[str, list[ClaimRun]] = {}
    for run in recipe.runs:
        if not run.snapshots or run.name not in record["runs"]:
            continue
        key = json.dumps([run.kind, run.start, run.problems, _settings(run), run.snapshots])
        groups.setdefault(key, []).append(run)
    found = []
    for members in groups.values():
        if len(members) < 2:
            continue
        a, b = members[:2]
        start = recipe.organism_dir / "base" if a.start == "base" else out / a.start
        row: dict[str, Any] = {"runs": [a.name, b.name], "steps": {}}
        for s in a.snapshots:
            pa, pb = snap_root / a.name / f"step-{s}", snap_root / b.name / f"step-{s}"
            if pa.exists() and pb.exists():
                o = seed_overlap(start, pa, pb, tol=BF16_TOL, dtype="bf16")
                row["steps"][str(s)] = dataclasses.asdict(o)
        previous = [x for x in record.get("overlap", []) if x["runs"] == row["runs"]]
        if not row["steps"] and previous:
            row = previous[0]  # snapshots gone: keep what was measured
        found.append(row)
    return found
