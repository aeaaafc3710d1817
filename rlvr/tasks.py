"""Verifiable tasks behind one small interface, for the experiment runner.

A task gives problems per split, the prompt of a problem, a verifier (reward 1/0), the
labelled strategy spans of a completion (for extraction), the segment-start test (for
routers: does this next token begin a segment of strategy X?), ``can_begin(prefix)`` (the
labels some next token could begin there), ``schedule`` (the ground-truth schedule
``prefix -> label | None`` where the task can say where a strategy helps; ``None`` on tasks
that cannot) and the format of a completion (for format-collapse shares). Two kinds:

- :class:`OrganismTask` — the shipped model organism's permutation-chain task; spans
  are exact (the task's own grammar).
- :class:`MathTask` — GSM8K / MATH500-style JSONL; answers checked by
  :mod:`rlvr.text.answers`, spans labelled by a (pluggable) sentence labeller from
  :mod:`rlvr.text.labelling` (default: the rule labeller, a heuristic).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

TASK_KINDS = ("organism", "gsm8k", "math500")


@dataclass
class OrganismTask:
    """The permutation-chain task with its problem splits (JSONL files)."""

    chain: Any  # rlvr.organism.task.PermutationChain
    split_files: dict[str, Path] = field(default_factory=dict)
    name: str = "organism"

    @property
    def labels(self) -> tuple[str, ...]:
        from .organism.task import SEGMENT_LABELS

        return SEGMENT_LABELS

    @property
    def classes(self) -> list[str]:
        return sorted(self.chain.classes)

    @property
    def stop(self) -> list[str]:
        # the organism ends every completion with "." then <eos>: stopping at <eos> keeps
        # the "." (a stop string would be cut from the text) that the verifier requires
        return []

    @property
    def max_new_tokens(self) -> int:
        return int(self.chain.budget)

    def problems(self, split: str, cls: str | None = None) -> list[Any]:
        from .organism.problem_files import read_problems

        if split not in self.split_files:
            raise ValueError(
                f"no {split!r} split configured: give one of {sorted(self.split_files)}"
            )
        return read_problems(self.split_files[split], cls)

    def cls_of(self, problem: Any) -> str:
        return problem.cls

    def uid(self, problem: Any) -> str:
        return problem.uid

    def prompt(self, problem: Any) -> str:
        return self.chain.prompt(problem)

    def verify(self, problem: Any, completion: str) -> float:
        return self.chain.verify(problem, completion)

    def spans(self, prompt: str, completion: str) -> list[tuple[int, int, str]]:
        return [tuple(s) for s in self.chain.spans(prompt, completion)]

    def segment_start(self, prefix: str, next_text: str) -> str | None:
        return self.chain.segment_start(prefix, next_text)

    def __post_init__(self) -> None:
        # routers and the per-step records ask about the same prefixes within a step
        self._can_begin = lru_cache(maxsize=1 << 16)(self.chain.can_begin)
        self._schedule = lru_cache(maxsize=1 << 16)(self.chain.schedule)

    def can_begin(self, prefix: str) -> frozenset[str]:
        return self._can_begin(prefix)

    def schedule(self, prefix: str) -> str | None:
        """The ground-truth schedule (see ``PermutationChain.schedule``)."""
        return self._schedule(prefix)

    @property
    def schedule_labels(self) -> tuple[str, ...]:
        """The labels the ground-truth schedule decides (it never fires ``direct``)."""
        return tuple(self.chain.SCHEDULE_LABELS)

    def format_of(self, completion: str) -> str:
        return self.chain.format_of(completion)


@dataclass
class MathTask:
    """GSM8K / MATH500 problems from local JSONL, checked by :func:`rlvr.text.answers.verify`."""

    kind: str
    split_files: dict[str, Path] = field(default_factory=dict)
    labeller: Callable[[list[str]], list[str]] | None = None
    prompt_template: str = (
        "{question}\nPlease reason step by step, and put your final answer within \\boxed{{}}.\n"
    )
    max_new_tokens: int = 1024
    name: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("gsm8k", "math500"):
            raise ValueError(f"unknown math task {self.kind!r}: use 'gsm8k' or 'math500'")
        self.name = self.name or self.kind

    @property
    def labels(self) -> tuple[str, ...]:
        from .text.reasoning import LABELS

        return LABELS

    @property
    def classes(self) -> list[str]:
        return ["all"]

    @property
    def stop(self) -> list[str]:
        return []

    def problems(self, split: str, cls: str | None = None) -> list[Any]:
        from .text.datasets import load_gsm8k_jsonl, load_math500_jsonl

        if split not in self.split_files:
            raise ValueError(
                f"no {split!r} split configured: give one of {sorted(self.split_files)}"
            )
        load = load_gsm8k_jsonl if self.kind == "gsm8k" else load_math500_jsonl
        return load(self.split_files[split])

    def cls_of(self, problem: Any) -> str:
        return "all"

    def uid(self, problem: Any) -> str:
        return str(problem.id)

    def prompt(self, problem: Any) -> str:
        return self.prompt_template.format(question=problem.prompt)

    def verify(self, problem: Any, completion: str) -> float:
        from .text.answers import verify

        return verify(completion, problem.reference)

    def spans(self, prompt: str, completion: str) -> list[tuple[int, int, str]]:
        from .text.reasoning import label_trace

        base = len(prompt)
        return [
            (base + s.start, base + s.end, s.label)
            for s in label_trace(completion, self.labeller)
            if s.label != "other"
        ]

    schedule = None  # real reasoning has no ground-truth schedule

    def segment_start(self, prefix: str, next_text: str) -> str | None:
        """The label of the sentence ``next_text`` begins after ``prefix`` (None: none).

        Only the token's text is labelled; a labeller too costly to call per candidate
        token (an LLM) names a cheaper one in its ``token_labeller`` attribute.
        """
        from .text.reasoning import segment_start_label

        labeller = getattr(self.labeller, "token_labeller", None) or self.labeller
        lab = segment_start_label(prefix, next_text, labeller)
        return None if lab == "other" else lab

    def can_begin(self, prefix: str) -> frozenset[str]:
        """The labels some next token could begin after ``prefix`` (the completion so far):
        all six at a sentence boundary, none elsewhere (inside a word, a sentence or math)."""
        from .text.reasoning import CATEGORIES, at_sentence_boundary

        return frozenset(CATEGORIES) if at_sentence_boundary(prefix) else frozenset()

    def format_of(self, completion: str) -> str:
        spans = self.spans("", completion)
        return "BACKTRACKS" if any(s[2] == "backtracking" for s in spans) else "LINEAR"


def load_task(
    kind: str, splits: dict[str, str | Path], spec: str | Path | None = None, **kw: Any
) -> OrganismTask | MathTask:
    """Build a task from a kind name, split files and (organism) a task-definition JSON."""
    files = {k: Path(v) for k, v in splits.items()}
    for name, p in files.items():
        if not p.exists():
            raise ValueError(f"the {name!r} split file {p} does not exist: fix the path")
    if kind == "organism":
        from .organism.task import PermutationChain

        if spec is None:
            raise ValueError(
                "an organism task needs its definition: give task.spec = "
                "'data/organism-sharpening/recipe.toml' (its [task] table) or a JSON of the same keys"
            )
        text = Path(spec).read_text()
        if str(spec).endswith(".toml"):
            import tomllib

            d = tomllib.loads(text)
        else:
            d = json.loads(text)
        return OrganismTask(PermutationChain.from_dict(d.get("task", d)), files)
    if kind in ("gsm8k", "math500"):
        return MathTask(kind, files, **kw)
    raise ValueError(f"unknown task kind {kind!r}: use one of {', '.join(TASK_KINDS)}")


def problem_ids(task: Any, problems: Sequence[Any]) -> list[str]:
    return [task.uid(p) for p in problems]
