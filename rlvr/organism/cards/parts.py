"""The pieces both organism cards are built from: the :class:`Card` record every section
reads (the recipe, ``training.json``, ``results.json``), the number formats, and the tables
both cards show (corpus formats, training runs, pass@k, formats over RL steps, weights, files).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..recipe import Recipe
from ..task import FORMATS

__all__ = [
    "Card",
    "at",
    "ci",
    "corpus_table",
    "files_section",
    "minutes",
    "num",
    "passk_table",
    "pct",
    "rl_formats_table",
    "training_table",
    "weights_table",
]

# ----------------------------------------------------------------------------- numbers


def pct(x: float | None, d: int = 1) -> str:
    """A share as a percentage (``n/a`` for None)."""
    return "n/a" if x is None else f"{100 * x:.{d}f}%"


def num(x: float | None, d: int = 3) -> str:
    """A number with ``d`` decimals (``n/a`` for None)."""
    return "n/a" if x is None else f"{x:.{d}f}"


def ci(c: dict[str, Any] | None, d: int = 3) -> str:
    """``mean [low, high]`` of a dict with those keys (``n/a`` without a mean)."""
    if c is None or c.get("mean") is None:
        return "n/a"
    return f"{c['mean']:.{d}f} [{num(c.get('low'), d)}, {num(c.get('high'), d)}]"


def at(curve: dict[str, Any], k: int) -> dict[str, float]:
    """A pass@k curve's ``mean``, ``low`` and ``high`` at ``k``."""
    i = curve["ks"].index(k)
    return {"mean": curve["mean"][i], "low": curve["low"][i], "high": curve["high"][i]}


def minutes(s: float | None) -> str:
    """Seconds as ``x.y min (z s)`` (``n/a`` for None)."""
    return "n/a" if s is None else f"{s / 60:.1f} min ({s:.0f} s)"


# ----------------------------------------------------------------------------- shared tables


def corpus_table(corpus: Any, noise: tuple[str, str, str]) -> list[str]:
    """The pretraining formats (shape, share of the corpus) with each one's ``noise`` text."""
    shapes = ("`=xyz.`", "`bcd...=xyz.`", "`bc?cd...=xyz.`")
    return [
        "| format | shape | share | noise |",
        "|---|---|---|---|",
        *(
            f"| {fmt} | {shape} | {share:.2f} | {text} |"
            for fmt, shape, share, text in zip(FORMATS, shapes, corpus.mix, noise)
        ),
    ]


def training_table(rows: list[tuple[str, str, Any, float | None]]) -> list[str]:
    """One row per training stage: ``(stage, settings, steps, seconds)``."""
    return [
        "| stage | settings | steps | wall time |",
        "|---|---|---|---|",
        *(
            f"| {stage} | {settings} | {steps} | {minutes(s)} |"
            for stage, settings, steps, s in rows
        ),
    ]


def passk_table(models: dict[str, Any], names: list[str], cls: str, ks: list[int]) -> list[str]:
    """pass@k with its CI per k (rows) and model (columns) on one class."""
    return [
        "| k | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
        *(
            f"| {k} | " + " | ".join(ci(at(models[nm]["passk"][cls], k)) for nm in names) + " |"
            for k in ks
        ),
    ]


def rl_formats_table(fs: dict[str, Any]) -> list[str]:
    """One RL seed's format shares, reward, checks, step accuracy and length over steps."""
    return [
        "| step | "
        + " | ".join(FORMATS)
        + " | mean reward | checks per step | step acc | mean length |",
        "|---|" + "---|" * (len(FORMATS) + 4),
        *(
            f"| {row['step']} | "
            + " | ".join(pct(row["shares"].get(f)) for f in FORMATS)
            + f" | {num(row['reward'])} | {num(row['checks_per_step'])} | {num(row['step_acc'])} | "
            f"{num(row['mean_length'], 1)} |"
            for row in fs["table"]
        ),
    ]


def weights_table(w: dict[str, Any], rl_names: list[str], *, sparsity: bool) -> list[str]:
    """Updated share (bf16, fp32) and mean relative rank of each seed's weight update;
    ``sparsity`` adds the sparsity beside each share."""
    fp32 = "updated share, fp32 (any change)" if sparsity else "updated share, fp32"
    out = [
        f"| RL seed | updated share, bf16 (abs diff > 1e-5) | {fp32} | mean rank(dW)/min(m, n) |",
        "|---|---|---|---|",
    ]
    for name in rl_names:
        sp = w["sparsity"][name]
        bf16, fp = pct(sp["bf16"]["updated_share"]), pct(sp["fp32"]["updated_share"])
        if sparsity:
            bf16 += f" (sparsity {pct(sp['bf16']['sparsity'])})"
            fp += f" (sparsity {pct(sp['fp32']['sparsity'])})"
        out.append(f"| {name} | {bf16} | {fp} | {num(w['rank'][name]['mean'])} |")
    return out


def files_section(checkpoints: str, log_fields: str, results_note: str = "") -> list[str]:
    """The card's last section: what each file of the organism folder holds."""
    return [
        "## Files",
        "",
        f"- {checkpoints}: safetensors + config + character tokenizer (load with "
        "`transformers.AutoModelForCausalLM` / `AutoTokenizer`, or `probes.handles.wrap(path)`).",
        "- `splits/{train,dev,test}.jsonl`: problems (`start`, `hops`, `cls`).",
        f"- `logs/rl-seed*.jsonl`: per RL step, `{{{log_fields}, ...}}`.",
        "- `recipe.toml`: every seed and setting; `training.json`: times, steps, the gate; "
        f"`results.json`: every number in this card{results_note}.",
        "",
    ]


# ----------------------------------------------------------------------------- the card


@dataclass(frozen=True)
class Card:
    """What every section reads: the recipe, ``training.json`` and ``results.json``."""

    recipe: Recipe
    training: dict[str, Any]
    results: dict[str, Any]

    @property
    def task(self) -> Any:
        return self.recipe.task

    @property
    def corpus(self) -> Any:
        return self.recipe.pretrain.corpus

    @property
    def settings(self) -> dict[str, Any]:
        return self.results["settings"]

    @property
    def models(self) -> dict[str, Any]:
        return self.results["models"]

    @property
    def names(self) -> list[str]:
        """The base, then the RL seeds."""
        return list(self.models)

    @property
    def rl_names(self) -> list[str]:
        return self.names[1:]

    @property
    def classes(self) -> list[str]:
        return list(self.settings["classes"])

    @property
    def main(self) -> str:
        return "main" if "main" in self.classes else self.classes[0]

    @property
    def ks(self) -> list[int]:
        return self.settings["ks"]

    @property
    def corpus_hops(self) -> str:
        return f"{self.corpus.hops[0]}-{self.corpus.hops[1]}"

    def join(self, sections: Sequence[Callable[[Card], list[str]]]) -> str:
        """The markdown of the sections' lines, in order."""
        return "\n".join(line for section in sections for line in section(self))
