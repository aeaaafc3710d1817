"""Measure RuleLabeller against the hand-labelled sentences in data/reasoning_sentences.jsonl.

Usage: python bench/labeller.py [PATH] [--errors]

Prints per-category precision, recall, F1 and support, overall accuracy, and a confusion
matrix (rows: annotated label, columns: predicted label), for the whole set and for each
``split`` of it. Rows marked ``"split": "tuning"`` were looked at while the default rules
were written; rows marked ``"heldout"`` were not, so their scores are the fairer estimate.
``--errors`` also lists the sentences the rules get wrong, with the rule that fired.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from rlvr.reasoning import LABELS, RuleLabeller

DEFAULT_PATH = Path(__file__).resolve().parents[1] / "data" / "reasoning_sentences.jsonl"
SHORT = {
    "initializing": "init",
    "deduction": "ded",
    "adding-knowledge": "know",
    "example-testing": "test",
    "uncertainty-estimation": "unc",
    "backtracking": "back",
    "other": "other",
}


@dataclass(frozen=True)
class Example:
    text: str
    label: str
    split: str = ""


@dataclass(frozen=True)
class Scores:
    label: str
    precision: float
    recall: float
    f1: float
    support: int


def load(path: Path) -> list[Example]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; pass the path of a labelled JSONL file")
    examples = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{lineno}: not valid JSON ({err.msg})") from err
        if not isinstance(row, dict) or not {"text", "label"} <= row.keys():
            raise ValueError(f'{path}:{lineno}: expected an object with "text" and "label"')
        if row["label"] not in LABELS:
            raise ValueError(f"{path}:{lineno}: label {row['label']!r} not in {list(LABELS)}")
        examples.append(Example(row["text"], row["label"], str(row.get("split", ""))))
    return examples


def score(gold: list[str], pred: list[str]) -> tuple[list[Scores], list[list[int]], float]:
    index = {label: k for k, label in enumerate(LABELS)}
    confusion = [[0] * len(LABELS) for _ in LABELS]
    for g, p in zip(gold, pred):
        confusion[index[g]][index[p]] += 1
    scores = []
    for k, label in enumerate(LABELS):
        tp = confusion[k][k]
        predicted = sum(row[k] for row in confusion)
        support = sum(confusion[k])
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        scores.append(Scores(label, precision, recall, f1, support))
    accuracy = sum(confusion[k][k] for k in range(len(LABELS))) / max(1, len(gold))
    return scores, confusion, accuracy


def report(title: str, examples: list[Example], pred: list[str]) -> None:
    scores, confusion, accuracy = score([e.label for e in examples], pred)
    print(f"\n== {title}: {len(examples)} sentences ==")
    print(f"{'label':<24}{'precision':>10}{'recall':>8}{'f1':>7}{'support':>9}")
    for s in scores:
        print(f"{s.label:<24}{s.precision:>10.2f}{s.recall:>8.2f}{s.f1:>7.2f}{s.support:>9d}")
    macro_f1 = sum(s.f1 for s in scores) / len(scores)
    print(f"accuracy {accuracy:.3f}   macro-F1 {macro_f1:.3f}")
    print("confusion (rows: annotated, columns: predicted)")
    print(" " * 8 + "".join(f"{SHORT[label]:>7}" for label in LABELS))
    for label, row in zip(LABELS, confusion):
        print(f"{SHORT[label]:<8}" + "".join(f"{n:>7d}" for n in row))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--errors", action="store_true", help="list misclassified sentences")
    args = parser.parse_args(argv)

    examples = load(args.path)
    labeller = RuleLabeller()
    pred = labeller([e.text for e in examples])
    print(f"RuleLabeller on {args.path.name}: {len(examples)} sentences")
    report("all", examples, pred)
    splits = sorted({e.split for e in examples if e.split})
    for split in splits if len(splits) > 1 else []:
        keep = [k for k, e in enumerate(examples) if e.split == split]
        report(f"split={split}", [examples[k] for k in keep], [pred[k] for k in keep])
    if args.errors:
        print("\nerrors (annotated -> predicted, rule that fired):")
        for e, p in zip(examples, pred):
            if p != e.label:
                rule = labeller.explain(e.text)[1]
                fired = "default" if rule is None else rule[:50]
                tag = f"[{e.split}] " if e.split else ""
                print(f"  {tag}{SHORT[e.label]:>5} -> {SHORT[p]:<5} {e.text[:70]!r}  [{fired}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
