"""The claims recipe: every run the five RL-claim experiments ship, read from a TOML file.

A claims folder (``data/organism-claims``) holds checkpoints trained from an organism's
base (``organism = "../organism-sharpening"``, relative to the recipe). Its recipe has

``[select]``  how the special problem sets are chosen (one example; over-hard problems);
``[teacher]`` the distillation teacher and how many traces it writes per problem;
``[[run]]``   one table per run: ``name``, ``claim``, ``kind`` (``grpo``, ``sft`` or
              ``pretrain``), ``start`` (``"base"`` = the organism's base, or the name of
              an earlier pretrain run), ``problems`` (``train``, ``one`` or ``over_hard``;
              SFT trains on the teacher's traces of the train problems), ``seed``,
              ``snapshots`` (optimiser steps whose weights are measured), and a sub-table of
              settings: ``[run.rl]`` (over the organism's ``[rl]``), ``[run.sft]`` or
              ``[run.corpus]`` / ``[run.pretrain]`` (over the organism's).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..grpo import RLSpec
from ..recipe import Recipe, load_recipe
from ..sft import SFTSpec
from .settings import CLAIMS, KINDS, PROBLEM_SETS

__all__ = [
    "ClaimRun",
    "ClaimsRecipe",
    "SelectSpec",
    "TeacherSpec",
    "is_claims_recipe",
    "load_claims",
]


@dataclass(frozen=True)
class SelectSpec:
    """How special problem sets are chosen from base samples (seed ``seed``).

    One example: the main train problem whose base pass@1 over ``one_n`` samples has the
    largest variance p(1 - p) (Wang et al. rank by accuracy variance), repeated
    ``one_repeat`` times so every GRPO batch is that problem. Over-hard: ``over_hard_pool``
    distinct problems with hops in ``over_hard_hops``, kept when the base solves none of
    ``over_hard_n`` samples.
    """

    seed: int = 0
    one_n: int = 64
    one_repeat: int = 128
    over_hard_hops: tuple[int, int] = (33, 44)
    over_hard_pool: int = 96
    over_hard_n: int = 256


@dataclass(frozen=True)
class TeacherSpec:
    """The distillation teacher (a checkpoint relative to the recipe) and its traces: ``n``
    samples per train problem at ``temperature``; only verified-correct ones are kept."""

    checkpoint: str = "../organism-sharpening/rl-seed0"
    n: int = 8
    temperature: float = 1.0
    seed: int = 0


@dataclass(frozen=True)
class ClaimRun:
    """One training run of the claims folder (see the module docstring)."""

    name: str
    claim: str
    kind: str
    start: str = "base"
    problems: str = "train"
    seed: int = 0
    snapshots: tuple[int, ...] = ()
    rl: RLSpec | None = None
    sft: SFTSpec | None = None
    pretrain: dict[str, Any] = field(default_factory=dict)
    corpus: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ClaimsRecipe:
    """The organism the runs start from, the selection rules, the teacher and the runs."""

    path: Path
    organism_dir: Path
    organism: Recipe
    select: SelectSpec
    teacher: TeacherSpec
    runs: tuple[ClaimRun, ...]

    def run(self, name: str) -> ClaimRun:
        for r in self.runs:
            if r.name == name:
                return r
        raise ValueError(
            f"no run {name!r} in {self.path}: use one of {[r.name for r in self.runs]}"
        )

    def of_claim(self, claim: str) -> list[ClaimRun]:
        if claim not in CLAIMS:
            raise ValueError(f"unknown claim {claim!r}: use one of {', '.join(CLAIMS)}")
        return [r for r in self.runs if r.claim == claim]

    def teacher_dir(self) -> Path:
        return (self.path.parent / self.teacher.checkpoint).resolve()


def _fields(cls: type, table: dict[str, Any], where: str) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(table) - names
    if unknown:
        raise ValueError(f"{where} has unknown keys {sorted(unknown)}: use {sorted(names)}")
    return {k: tuple(v) if isinstance(v, list) else v for k, v in table.items()}


def is_claims_recipe(path: str | os.PathLike[str]) -> bool:
    """Whether a recipe TOML is a claims recipe (it lists ``[[run]]`` tables)."""
    with open(path, "rb") as f:
        return "run" in tomllib.load(f)


def load_claims(path: str | os.PathLike[str]) -> ClaimsRecipe:
    """Read a claims recipe (see ``data/organism-claims/recipe.toml``)."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"no claims recipe at {path}: copy data/organism-claims/recipe.toml")
    with open(path, "rb") as f:
        raw = tomllib.load(f)
    if "organism" not in raw or "run" not in raw:
        raise ValueError(
            f"{path} is not a claims recipe: it needs organism = '<folder>' and [[run]] tables"
        )
    org_dir = (path.parent / str(raw["organism"])).resolve()
    if not (org_dir / "recipe.toml").exists():
        raise ValueError(f"{path}: organism = {raw['organism']!r} holds no recipe.toml")
    organism = load_recipe(org_dir / "recipe.toml")
    select = SelectSpec(**_fields(SelectSpec, raw.get("select", {}), "[select]"))
    teacher = TeacherSpec(**_fields(TeacherSpec, raw.get("teacher", {}), "[teacher]"))
    runs: list[ClaimRun] = []
    names: set[str] = set()
    for i, table in enumerate(raw["run"]):
        t = dict(table)
        where = f"[[run]] #{i + 1} ({t.get('name', '?')})"
        for key in ("name", "claim", "kind"):
            if key not in t:
                raise ValueError(f"{where} lacks {key!r}")
        if t["claim"] not in CLAIMS:
            raise ValueError(f"{where}: claim {t['claim']!r}: use one of {', '.join(CLAIMS)}")
        if t["kind"] not in KINDS:
            raise ValueError(f"{where}: kind {t['kind']!r}: use one of {', '.join(KINDS)}")
        if t["name"] in names:
            raise ValueError(f"{where}: the name {t['name']!r} is used twice")
        if t.get("problems", "train") not in PROBLEM_SETS:
            raise ValueError(f"{where}: problems {t['problems']!r}: use one of {PROBLEM_SETS}")
        start = t.get("start", "base")
        if start != "base" and start not in names:
            raise ValueError(f"{where}: start {start!r} is neither 'base' nor an earlier run")
        rl = sft = None
        if t["kind"] == "grpo":
            over = _fields(RLSpec, t.pop("rl", {}), f"{where} [run.rl]")
            rl = dataclasses.replace(organism.rl, **over)
        elif t["kind"] == "sft":
            sft = SFTSpec(**_fields(SFTSpec, t.pop("sft", {}), f"{where} [run.sft]"))
        t.pop("rl", None)
        t.pop("sft", None)
        known = {f.name for f in dataclasses.fields(ClaimRun)}
        unknown = set(t) - known
        if unknown:
            raise ValueError(f"{where} has unknown keys {sorted(unknown)}: use {sorted(known)}")
        t["snapshots"] = tuple(int(s) for s in t.get("snapshots", ()))
        runs.append(ClaimRun(**t, rl=rl, sft=sft))
        names.add(t["name"])
    return ClaimsRecipe(path, org_dir, organism, select, teacher, tuple(runs))
