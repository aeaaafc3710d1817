"""The organism's recipe: every seed and setting, read from a TOML file."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .corpus import CorpusSpec
from .grpo import RLSpec
from .pretrain import ModelSpec, PretrainSpec
from .task import PermutationChain

__all__ = ["EvalSpec", "GateSpec", "Recipe", "default_dir", "load_recipe"]


@dataclass(frozen=True)
class GateSpec:
    """Base competence required before RL (teacher-forced step and hard-check accuracy,
    sampled pass@1 on the main dev problems)."""

    min_step_acc: float = 0.95
    min_hard_check_acc: float = 0.9
    min_pass1: float = 0.01
    n_dev_samples: int = 64


@dataclass(frozen=True)
class EvalSpec:
    """How the card's numbers are measured."""

    n: int = 256
    ks: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256)
    temperature: float = 1.0
    seed: int = 0
    n_boot: int = 1000
    batch_size: int = 512
    collapse_threshold: float = 0.9
    bf16_tol: float = 1e-5
    fp32_tol: float = 0.0


@dataclass(frozen=True)
class Recipe:
    """Task, splits, corpus, model, pretraining, gate, RL (with its seeds) and evaluation."""

    task: PermutationChain
    split_seed: int
    split_sizes: dict[str, dict[str, int]]
    model: ModelSpec
    pretrain: PretrainSpec
    gate: GateSpec
    rl: RLSpec
    rl_seeds: tuple[int, ...]
    eval: EvalSpec = field(default_factory=EvalSpec)


def _build(cls: type, table: dict[str, Any], where: str) -> Any:
    names = {f.name for f in fields(cls)}
    unknown = set(table) - names
    if unknown:
        raise ValueError(f"[{where}] has unknown keys {sorted(unknown)}: use {sorted(names)}")
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in table.items()}
    return cls(**kwargs)


def load_recipe(path: str | os.PathLike[str]) -> Recipe:
    """Read a recipe TOML (see ``data/organism-sharpening/recipe.toml``)."""
    path = Path(path)
    if not path.exists():
        raise ValueError(
            f"no recipe at {path}: copy data/organism-sharpening/recipe.toml and edit it"
        )
    with open(path, "rb") as f:
        raw = tomllib.load(f)
    need = {"task", "splits", "corpus", "model", "pretrain", "rl"}
    missing = need - set(raw)
    if missing:
        raise ValueError(f"recipe {path} lacks tables {sorted(missing)}")
    task = PermutationChain.from_dict(raw["task"])
    splits = dict(raw["splits"])
    split_seed = int(splits.pop("seed", 0))
    sizes = {cls: {k: int(v) for k, v in dict(t).items()} for cls, t in splits.items()}
    for cls in sizes:
        task.hop_range(cls)  # refuses classes the task does not define
    corpus = _build(CorpusSpec, raw["corpus"], "corpus")
    pre = dict(raw["pretrain"])
    pretrain = _build(PretrainSpec, {**pre, "corpus": corpus}, "pretrain")
    rl = dict(raw["rl"])
    seeds = tuple(int(s) for s in rl.pop("seeds", (0, 1)))
    if not seeds:
        raise ValueError("[rl] seeds is empty: give at least one RL seed")
    return Recipe(
        task=task,
        split_seed=split_seed,
        split_sizes=sizes,
        model=_build(ModelSpec, raw["model"], "model"),
        pretrain=pretrain,
        gate=_build(GateSpec, raw.get("gate", {}), "gate"),
        rl=_build(RLSpec, rl, "rl"),
        rl_seeds=seeds,
        eval=_build(EvalSpec, raw.get("eval", {}), "eval"),
    )


def default_dir() -> Path:
    """``data/organism-sharpening`` of this checkout, where the shipped organism lives."""
    return Path(__file__).resolve().parents[2] / "data" / "organism-sharpening"
