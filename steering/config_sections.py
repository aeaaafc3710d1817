"""The experiment file's sections and keys, each declared once with its default.

:class:`Config` holds one dataclass per TOML section; :func:`locate` finds the
``file:line`` of a key for error messages. Imports no torch.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "MAX_SEED",
    "SCHEDULE_ROUTERS",
    "ClaimSection",
    "Config",
    "ConfigError",
    "DiffSection",
    "ExperimentSection",
    "ExtractSection",
    "FormatsSection",
    "HybridSection",
    "ModelsSection",
    "SamplingSection",
    "SweepSection",
    "TaskSection",
    "locate",
]

SCHEDULE_ROUTERS = ("ground_truth", "every_boundary", "base_probe")  # need a ground truth
MAX_SEED = 2**32 - 1  # numpy's and torch's seeds both take [0, 2**32)


class ConfigError(ValueError):
    """A problem in an experiment file, with the key and line it concerns."""


@dataclass
class ExperimentSection:
    name: str = "experiment"
    output: str = "runs/experiment"
    seed: int = 0
    threads: int = 0  # torch CPU threads; 0: 1 on a CPU device, torch's default on a GPU


@dataclass
class ModelsSection:
    base: str = ""
    rl: str = ""
    rl_other_seeds: list[str] = field(default_factory=list)
    backend: str = "hf"
    device: str = "cpu"
    dtype: str = "float32"


@dataclass
class TaskSection:
    kind: str = "organism"
    spec: str = ""
    dev: str = ""
    test: str = ""
    classes: list[str] = field(default_factory=list)
    n_dev: int = 32
    n_test: int = 200
    labeller: str = "rule"  # gsm8k/math500: "rule", a fitted .joblib or an LLM checkpoint


@dataclass
class SamplingSection:
    n: int = 64
    ks: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 16, 32, 64])
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 0  # 0: the task's budget
    batch_size: int = 512
    backend: str = "hf"  # or "vllm" for real models on a GPU


@dataclass
class ExtractSection:
    n_traces: int = 256
    sites: list[str] = field(default_factory=lambda: ["all"])
    pooling: str = "decision"
    labels: list[str] = field(default_factory=list)
    method: str = "diffmean"
    baseline: str = "rest"


@dataclass
class SweepSection:
    folds: int = 5
    n_boot: int = 200
    n_random: int = 20
    probe: str = "diffmean"


@dataclass
class HybridSection:
    labels: list[str] = field(default_factory=list)  # what routers may fire (default: all)
    classes: list[str] = field(default_factory=list)  # test classes of the hybrid runs
    n_problems: int = 0  # per class (0: every test problem of [task] n_test)
    coefs: list[float] = field(default_factory=lambda: [0.5, 1.0, 2.0])
    n_sites: int = 2
    routers: list[str] = field(
        default_factory=lambda: [
            "rl",
            "probe",
            "base_probe",
            "ground_truth",
            "every_boundary",
            "first_decision",
        ]
    )
    modes: list[str] = field(default_factory=lambda: ["handoff", "steer"])
    emit: str = "label"  # handoff emission rule of routers with a model (others: "label")
    exclusive: bool = True  # the schedule is the whole schedule (the verdict's setting)
    every_boundary: list[str] = field(default_factory=list)  # default: the first label
    controls: list[str] = field(
        default_factory=lambda: [
            "random_timing",
            "random_any_position",
            "random_vector",
            "bias_only",
            "rerank",
        ]
    )
    thresholds: list[float] = field(default_factory=lambda: [0.5, 0.9])
    temperatures: list[float] = field(default_factory=lambda: [1.0, 0.7, 0.5, 0.0])
    temperature_routers: list[str] = field(default_factory=lambda: ["ground_truth", "rl"])
    n: int = 16
    n_boot: int = 1000


@dataclass
class DiffSection:
    dtypes: list[str] = field(default_factory=lambda: ["bf16", "fp32"])
    tol: float = 1e-5


@dataclass
class FormatsSection:
    logs: list[str] = field(default_factory=list)


@dataclass
class ClaimSection:
    """An RL-claim experiment (``rlvr.organism.claims``): which claim, from which folder."""

    kind: str = ""  # one of CLAIMS; empty: the scheduling study
    folder: str = ""  # a claims folder (its recipe.toml and training.json)
    n: int = 64
    n_problems: int = 64
    ks: list[int] = field(default_factory=lambda: [1, 4, 16, 64])
    n_boot: int = 1000
    min_effect: float = 0.02
    margin: float = 0.1


@dataclass
class Config:
    experiment: ExperimentSection = field(default_factory=ExperimentSection)
    models: ModelsSection = field(default_factory=ModelsSection)
    task: TaskSection = field(default_factory=TaskSection)
    sampling: SamplingSection = field(default_factory=SamplingSection)
    extract: ExtractSection = field(default_factory=ExtractSection)
    sweep: SweepSection = field(default_factory=SweepSection)
    hybrid: HybridSection = field(default_factory=HybridSection)
    diff: DiffSection = field(default_factory=DiffSection)
    formats: FormatsSection = field(default_factory=FormatsSection)
    claim: ClaimSection = field(default_factory=ClaimSection)
    path: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def where(self, section: str, key: str | None = None) -> str:
        """``file:line: [section] key`` of a key, for errors found after loading."""
        text = Path(self.path).read_text() if self.path and Path(self.path).exists() else ""
        return locate(text, self.path, section, key)


def _line_of(text: str, section: str, key: str | None) -> int:
    """Line number (1-based) of ``key`` inside ``[section]`` (or of the section header)."""
    lines = text.splitlines()
    cur = None
    for i, line in enumerate(lines, 1):
        m = re.match(r"^\s*\[([^\]]+)\]\s*(#.*)?$", line)
        if m:
            cur = m.group(1).strip()
            if key is None and cur == section:
                return i
            continue
        if cur == section and key is not None and re.match(rf"^\s*{re.escape(key)}\s*=", line):
            return i
    return 0


def locate(text: str, path: str, section: str, key: str | None = None) -> str:
    """``file:line: [section] key`` of a key in the experiment file's ``text``."""
    line = _line_of(text, section, key)
    name = f"[{section}]" + (f" {key}" if key else "")
    return f"{path}:{line}: {name}" if line else f"{path}: {name}"
