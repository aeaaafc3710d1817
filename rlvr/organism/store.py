"""Where an organism's files are, and how to open them: its folder, task, splits, checkpoints.

An organism folder (``data/organism-sharpening`` by default) holds ``recipe.toml``,
``splits/{train,dev,test}.jsonl`` and one checkpoint folder per model (``base/``,
``rl-seed<N>/``). Training (:mod:`.pipeline`) writes these files (a checkpoint folder
through :func:`save_checkpoint`); evaluation (:mod:`.evaluate`) and users read them
through this module.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from .problem_files import read_problems
from .recipe import default_dir, load_recipe
from .task import PermutationChain, Problem

__all__ = [
    "SPLITS",
    "checkpoint",
    "load_splits",
    "load_task",
    "organism_folder",
    "save_checkpoint",
]

SPLITS = ("train", "dev", "test")


def organism_folder(organism_dir: str | os.PathLike[str] | None = None) -> Path:
    """The organism's folder (the shipped one by default); refused without a recipe.toml."""
    path = Path(organism_dir) if organism_dir is not None else default_dir()
    if not (path / "recipe.toml").exists():
        raise ValueError(
            f"no organism at {path} (recipe.toml missing): train one with "
            "rlvr.organism.train(recipe_path, out_dir) or pass the folder that holds it"
        )
    return path


def load_task(organism_dir: str | os.PathLike[str] | None = None) -> PermutationChain:
    """The organism's task (the shipped one by default), as its recipe defines it."""
    return load_recipe(organism_folder(organism_dir) / "recipe.toml").task


def checkpoint(name: str = "base", organism_dir: str | os.PathLike[str] | None = None) -> Path:
    """Folder of a checkpoint: ``"base"``, ``"rl"`` (= the first RL seed) or ``"rl-seed<N>"``."""
    root = organism_folder(organism_dir)
    if name == "rl":
        seeds = load_recipe(root / "recipe.toml").rl_seeds
        name = f"rl-seed{seeds[0]}"
    path = root / name
    if not (path / "config.json").exists():
        have = sorted(p.name for p in root.iterdir() if (p / "config.json").exists())
        raise ValueError(f"no checkpoint {name!r} in {root}: use one of {have}")
    return path


def load_splits(
    split: str, cls: str | None = None, organism_dir: str | os.PathLike[str] | None = None
) -> list[Problem]:
    """Problems of a shipped split (``train``/``dev``/``test``), optionally of one class."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: use one of {SPLITS}")
    return read_problems(organism_folder(organism_dir) / "splits" / f"{split}.jsonl", cls=cls)


def save_checkpoint(
    model: Any, tokenizer: Any, dest: str | os.PathLike[str], extra: dict[str, Any] | None = None
) -> None:
    """Write a checkpoint folder atomically: model, tokenizer and ``training.json`` (``extra``).

    Everything is written to ``<dest>.tmp`` first and moved into place at the end, so an
    interrupted save never leaves a half-written ``dest``; an existing ``dest`` is replaced.
    """
    dest = Path(dest)
    tmp = dest.with_name(dest.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    if extra is not None:
        (tmp / "training.json").write_text(json.dumps(extra, indent=1))
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(tmp, dest)
