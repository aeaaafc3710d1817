"""``rsteer``: the command line.

rsteer run data/experiments/organism.toml        # the whole study -> report
rsteer validate CONFIG                           # check a config, load nothing
rsteer passk|extract|sweep|select|hybrid|temperature|budget|diff|formats|claim CONFIG
                                                 # one stage (earlier ones from cache)
rsteer diff-checkpoints BASE RL [--other RL2]    # update sparsity between checkpoints
rsteer organism train [--recipe R] [--out DIR]   # retrain an organism or the claims runs
rsteer organism eval  [--out DIR]                # re-measure its card
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

STAGE_HELP = {
    "passk": "sample n completions per test problem from base and RL; pass@k curves, "
    "crossover k*, coverage split",
    "extract": "sample the base model on the dev split, label strategy spans, and store "
    "pooled activations at the configured sites",
    "sweep": "held-out probe AUROC per site and label vs shuffled-label and random-direction "
    "baselines; fit and save one vector per label",
    "select": "choose the steering site and coefficient on the dev split",
    "hybrid": "hybrid decoding on the test split for each router, mode and control (the RL "
    "router model keeps its own KV cache); recovery with CI and steered-token fraction",
    "temperature": "base, RL and hybrids over the temperature grid: the gap at each "
    "temperature and how much of it a temperature change alone recovers",
    "budget": "recovery against the share of tokens the router touches (threshold sweep)",
    "diff": "update sparsity base -> RL (bf16/fp32) and overlap across RL seeds",
    "formats": "format shares over RL steps from the training logs",
    "claim": "an RL claim ([claim] kind) measured on its claims folder, with its verdict",
}


def _sentence(text: str) -> str:
    """``text`` as a sentence: first letter up, the rest as written (keeps RL, AUROC, KV)."""
    return text[:1].upper() + text[1:]


def _threads(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = -1
    if n < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive number of threads")
    return n


def _add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="experiment TOML file (see data/experiments/organism.toml)")
    p.add_argument("--out", help="output folder (overrides [experiment] output)")
    p.add_argument("--force", action="store_true", help="recompute cached stages")
    p.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bars (they are off anyway when stderr is not a terminal)",
    )
    p.add_argument(
        "--threads",
        type=_threads,
        default=None,
        metavar="N",
        help="torch CPU threads (overrides [experiment] threads; default 1 on a CPU device, "
        "which avoids stalls when other processes share the cores)",
    )


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="rsteer",
        description="Test what RL post-training adds to a model: pass@k, strategy probes "
        "(AUROC against baselines), steering, and a hybrid decoder that measures scheduling "
        "alone. Models load from local folders only; nothing is downloaded.",
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser(
        "run",
        help="run every stage of an experiment and write the report",
        description="Run every stage of an experiment file; writes results.json, "
        "report.md and PNG plots into the output folder and prints "
        "the summary table. Finished stages are cached.",
    )
    _add_config(p)
    p = sub.add_parser(
        "validate",
        help="check an experiment file without loading any model",
        description="Check an experiment file: unknown sections or keys, wrong "
        "types, values out of range, missing model folders or data files, k larger than n, "
        "sites out of range, labels or classes the task does not have, a device this machine "
        "lacks. Reports file:line and loads no model.",
    )
    p.add_argument("config", help="experiment TOML file")
    for name, text in STAGE_HELP.items():
        p = sub.add_parser(
            name,
            help=text,
            description=_sentence(text) + ". Stages it "
            "depends on are taken from the cache or run first.",
        )
        _add_config(p)
    p = sub.add_parser(
        "diff-checkpoints",
        help="update sparsity between two checkpoints (base -> RL)",
        description="Share of parameters RL changed (|delta| > tol after casting "
        "to dtype), per layer; with --other, overlap of two RL seeds.",
    )
    p.add_argument("base", help="base checkpoint folder")
    p.add_argument("rl", help="RL checkpoint folder (trained from base)")
    p.add_argument("--other", help="a second RL checkpoint of the same base")
    p.add_argument("--tol", type=float, default=1e-5, help="|delta| above this counts as updated")
    p.add_argument(
        "--dtype",
        default="bf16",
        choices=["bf16", "fp16", "fp32"],
        help="compare after casting both to this dtype",
    )
    p = sub.add_parser(
        "organism",
        help="train or evaluate the shipped model organism",
        description="The model organism: a tiny base/RL pair trained by this "
        "project on a synthetic verifiable task (data/organism-sharpening). "
        "'train' reproduces it from a recipe; 'eval' re-measures the "
        "numbers of its card.",
    )
    osub = p.add_subparsers(dest="organism_cmd", required=True)
    q = osub.add_parser(
        "train",
        help="pretrain the base and run GRPO (RL) for both seeds; or train a claims recipe",
        description="Reproduce data/organism-sharpening from scratch with the settings "
        "and seeds of a recipe TOML (CPU, tens of minutes). A claims recipe "
        "(data/organism-claims/recipe.toml: [[run]] tables) trains the runs of the RL-claim "
        "experiments instead, skipping runs already in the output folder.",
    )
    q.add_argument(
        "--recipe", default=None, help="recipe TOML (default: data/organism-sharpening/recipe.toml)"
    )
    q.add_argument(
        "--out", default=None, help="output folder (default: a new folder, never the shipped one)"
    )
    q = osub.add_parser(
        "eval",
        help="re-measure the organism card's numbers",
        description="Evaluate base and RL checkpoints of an organism folder and "
        "write its card numbers (JSON).",
    )
    q.add_argument(
        "--dir", default=None, help="organism folder (default: data/organism-sharpening)"
    )
    q.add_argument(
        "--out",
        default=None,
        help="folder for results.json and the card (default runs/organism-eval)",
    )
    return ap


def _config(args):
    from .config import load_config

    over: dict[str, dict] = {"experiment": {}}
    if getattr(args, "out", None):
        over["experiment"]["output"] = args.out
    if getattr(args, "threads", None):
        over["experiment"]["threads"] = args.threads
    return load_config(args.config, over)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # the toolkit never downloads: models load from local folders, the hub stays offline
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from .config import ConfigError

    try:
        return _dispatch(args)
    except ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2


def _dispatch(args) -> int:
    if args.cmd == "validate":
        cfg = _config(args)
        print(f"{args.config}: ok ({cfg.models.base} vs {cfg.models.rl}, task {cfg.task.kind})")
        return 0
    if args.cmd == "run" or args.cmd in STAGE_HELP:
        from .experiment import run_experiment
        from .report import summary_table

        cfg = _config(args)
        stages = None if args.cmd == "run" else [args.cmd]
        res = run_experiment(cfg, stages=stages, progress=not args.quiet, force=args.force)
        out = Path(cfg.experiment.output)
        print(summary_table(res))
        print(f"\nwrote {out / 'report.md'} and {out / 'results.json'}")
        return 0
    if args.cmd == "diff-checkpoints":
        from rlvr.measures.weightdiff import seed_overlap, update_sparsity

        u = update_sparsity(args.base, args.rl, tol=args.tol, dtype=args.dtype)
        print(
            f"{args.dtype}, tol {args.tol}: {100 * u.updated_share:.2f}% of "
            f"{u.n_params} parameters updated"
        )
        for layer in u.per_layer:
            print(f"  layer {layer.layer}: {100 * layer.updated_share:.2f}%")
        if args.other:
            o = seed_overlap(args.base, args.rl, args.other, tol=args.tol, dtype=args.dtype)
            print(
                f"seed overlap |I1&I2|/|I1| {100 * o.overlap_1:.1f}% (chance "
                f"{100 * o.chance_1:.1f}%), |I1&I2|/|I2| {100 * o.overlap_2:.1f}% "
                f"(chance {100 * o.chance_2:.1f}%)"
            )
        return 0
    if args.cmd == "organism":
        from rlvr import organism

        if args.organism_cmd == "train":
            from rlvr.organism.claims.recipe import is_claims_recipe

            recipe = args.recipe or str(organism.default_dir() / "recipe.toml")
            if not Path(recipe).is_file():
                print(f"no recipe at {recipe}: pass --recipe FILE", file=sys.stderr)
                return 2
            claims = is_claims_recipe(recipe)
            out = Path(args.out or ("runs/claims-retrain" if claims else "runs/organism-retrain"))
            shipped = organism.default_dir().parent
            if out.resolve() in {
                (shipped / name).resolve()
                for name in ("organism-sharpening", "organism-when", "organism-claims")
            }:
                print(
                    f"refusing to overwrite the shipped folder {out}: pass another --out",
                    file=sys.stderr,
                )
                return 2
            if claims:
                from rlvr.organism.claims import train_claims

                train_claims(recipe, out)
                print(f"claims runs written to {out} (record: {out / 'training.json'})")
                return 0
            organism.train(recipe, out)
            print(f"trained organism written to {out} (card: {out / 'README.md'})")
        else:
            out = Path(args.out or "runs/organism-eval")
            out.mkdir(parents=True, exist_ok=True)
            organism.evaluate(args.dir, out / "results.json")
            organism.write_card(args.dir, out / "results.json", out / "README.md")
            print(f"wrote {out / 'results.json'} and {out / 'README.md'}")
        return 0
    raise AssertionError(args.cmd)


if __name__ == "__main__":
    sys.exit(main())
