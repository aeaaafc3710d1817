"""Where the hybrid stage of a study spends its time: cProfile of one ``hybrid`` stage run.

Runs the stages the hybrid stage needs (``passk``, ``extract``, ``sweep``, ``select``;
cached in ``--out``, so only the first call pays for them) on the experiment file with
``[hybrid] n_problems`` lowered, then profiles the ``hybrid`` stage alone (recomputed every
call) and prints the share of its time spent in

- ``tokenizer decode``: every call into a tokenizer's decoder (the ``tokenizers`` backend
  or transformers' ``decode``), wherever it comes from;
- ``text tracking``: keeping each row's text during decoding and telling routers what a
  token would add (``rlvr.generation.detokenize``, the hybrid's ``RowTexts`` and its view's
  ``prefix``/``next_text``), decode included;
- ``task tests on text``: the task's ``segment_start`` / ``can_begin`` / ``schedule``;
- ``model runs``: the models' forward passes (``handle.run``, its hooks included);

then the top functions by own time. Shares are of the profiled stage (profiling overhead
included, which weighs on many small Python calls: the shares of the Python parts are upper
bounds).

    python bench/hybrid_profile.py [--config data/experiments/organism.toml]
        [--out runs/organism-profile] [--n-problems 8] [--threads 1] [--top 25]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# (name, test on (file, function name)); a function is counted once, under the first match
GROUPS = {
    "tokenizer decode": lambda f, fn: (
        "decode" in fn
        and ("tokenizers" in f or "tokenization_utils" in f or (f == "~" and "okenizer" in fn))
    ),
    "text tracking": lambda f, fn: (
        f.endswith(("rlvr/generation/detokenize.py", "hybrid/texts.py"))
        or (f.endswith("hybrid/run.py") and fn in ("prefix", "next_text", "next_texts"))
    ),
    "task tests on text": lambda f, fn: (
        f.endswith(("rlvr/tasks.py", "organism/task.py"))
        and fn in ("segment_start", "can_begin", "schedule")
    ),
    "model runs": lambda f, fn: (
        fn == "run" and f.endswith(("probes/handles/base.py", "rlvr/generation/forward.py"))
    ),
}


def _cumulative_share(stats: pstats.Stats, test) -> float:
    """Share of the total time spent inside functions passing ``test`` (outermost calls only,
    so recursion and nesting within the group are not counted twice)."""
    total = stats.total_tt
    inside = 0.0
    for (f, _line, fn), (_cc, _nc, _tt, ct, callers) in stats.stats.items():
        if not test(f, fn):
            continue
        # time entering the group from outside it
        for (cf, _cl, cfn), (_a, _b, _c, cct) in callers.items():
            if not test(cf, cfn):
                inside += cct
        if not callers:
            inside += ct
    return inside / total if total else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="data/experiments/organism.toml")
    ap.add_argument("--out", default="runs/organism-profile")
    ap.add_argument("--n-problems", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--save", default=None, help="write the raw profile here (pstats format)")
    ap.add_argument("--load", default=None, help="only summarise a profile saved with --save")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.load:
        summarise(pstats.Stats(args.load), args.top)
        return

    from steering.config import load_config
    from steering.experiment import Run, stage_extract, stage_passk, stage_sweep
    from steering.scheduling.stages import stage_hybrid, stage_select

    overrides = {
        "experiment": {"output": args.out},
        "hybrid": {"n_problems": args.n_problems},
    }
    cfg = load_config(args.config, overrides)
    run = Run(cfg, progress=False)
    res: dict = {"passk": stage_passk(run)}
    table = stage_extract(run)
    sweep = stage_sweep(run, table)
    res["sweep"] = {k: v for k, v in sweep.items() if not k.startswith("_")}
    res["select"] = stage_select(run, res, table)
    run.force = True  # the hybrid stage itself is always measured afresh
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    stage_hybrid(run, res, table)
    prof.disable()
    wall = time.perf_counter() - t0
    if args.save:
        prof.dump_stats(args.save)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"hybrid stage of {args.config}, n_problems {args.n_problems}, "
        f"{torch.get_num_threads()} thread(s), load {load:.2f}: {wall:.1f} s under cProfile"
    )
    summarise(pstats.Stats(prof), args.top)


def summarise(stats: pstats.Stats, top: int) -> None:
    print(f"profiled: {stats.total_tt:.1f} s")
    for name, test in GROUPS.items():
        print(f"  {name:20s} {100 * _cumulative_share(stats, test):5.1f} %")
    print()
    stats.sort_stats("tottime").print_stats(top)


if __name__ == "__main__":
    main()
