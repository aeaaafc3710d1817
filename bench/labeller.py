"""Measure a reasoning-sentence labeller against annotated traces.

Usage: python bench/labeller.py [PATH] [--split heldout] [--labeller rule|FILE.joblib|CKPT]
                                [--fit] [--errors]

PATH is any annotated file ``rlvr.text.labelling.read_annotated`` reads (the paper's
``["label"] sentence ["end-section"]`` layout, or JSONL of sentence and label); the
default is ``data/reasoning/dev_traces.json`` and its held-out split, which the rule
labeller was not tuned on. Prints accuracy, macro-F1 and Cohen's kappa with bootstrap 95%
CIs over traces, the majority-class baseline, per-label scores and the confusion matrix.
``--fit`` also fits a TrainedLabeller on the other splits of PATH (cross-validated figures
printed) and scores it on the same traces. ``--errors`` lists the sentences a rule
labeller gets wrong, with the stage or rule that fired.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rlvr.text.labelling import (
    RuleLabeller,
    TrainedLabeller,
    describe_labeller,
    evaluate,
    load_labeller,
    read_annotated,
)
from rlvr.text.labelling.labels import SHORT

DEFAULT_PATH = Path(__file__).resolve().parents[1] / "data" / "reasoning" / "dev_traces.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_PATH)
    parser.add_argument(
        "--split",
        default=None,
        help="score only this split (default: heldout when the file has one, else every trace)",
    )
    parser.add_argument("--labeller", default="rule", help="rule, a .joblib file or a checkpoint")
    parser.add_argument("--fit", action="store_true", help="also fit and score a TrainedLabeller")
    parser.add_argument("--errors", action="store_true", help="list misclassified sentences")
    parser.add_argument("--n-boot", type=int, default=1000)
    args = parser.parse_args(argv)

    traces = read_annotated(args.path)
    split = args.split
    if split is None and any(t.split == "heldout" for t in traces):
        split = "heldout"
    scored = [t for t in traces if split is None or t.split == split]
    if not scored:
        print(f"no traces with split {split!r} in {args.path}", file=sys.stderr)
        return 2
    labeller = load_labeller(args.labeller)
    name = describe_labeller(labeller)
    where = f"{args.path.name}" + (f", split={split}" if split else "")
    result = evaluate(labeller, scored, n_boot=args.n_boot)
    print(f"== {name} labeller on {where} ==")
    print(result.summary())

    if args.fit:
        rest = [t for t in traces if split is not None and t.split != split]
        if not rest:
            print("\n--fit needs traces outside the scored split to train on", file=sys.stderr)
            return 2
        print(f"\n== fitting a TrainedLabeller on the other {len(rest)} traces ==")
        trained = TrainedLabeller.fit(rest, n_boot=args.n_boot)
        print(f"\n== trained labeller on {where} ==")
        print(evaluate(trained, scored, n_boot=args.n_boot).summary())

    if args.errors and isinstance(labeller, RuleLabeller):
        print("\nerrors (annotated -> predicted, the stage or rule that fired):")
        for t in scored:
            pred: list[str] = []
            for k, text in enumerate(t.texts):
                label, why = labeller.explain(text, k, pred[-1] if pred else None)
                pred.append(label)
                if label != t.labels[k]:
                    gold, got = SHORT[t.labels[k]], SHORT[label]
                    print(f"  [{t.id}] {gold:>5} -> {got:<5} {text[:70]!r}  [{why[:40]}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
