"""The label set of reasoning sentences and the sentence records, shared by every labeller.

The six categories are the sentence taxonomy of Venhoff, Arcuschin et al. (2025,
"Understanding reasoning in thinking language models via steering vectors",
arXiv:2506.18167). ``other`` is an extra label a labeller uses only when asked to (the
reference annotation never does).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["CATEGORIES", "LABELS", "SHORT", "LabeledSentence", "Labeller", "Sentence"]

CATEGORIES: tuple[str, ...] = (
    "initializing",
    "deduction",
    "adding-knowledge",
    "example-testing",
    "uncertainty-estimation",
    "backtracking",
)
LABELS: tuple[str, ...] = (*CATEGORIES, "other")

SHORT = {
    "initializing": "init",
    "deduction": "ded",
    "adding-knowledge": "know",
    "example-testing": "test",
    "uncertainty-estimation": "unc",
    "backtracking": "back",
    "other": "other",
}

Labeller = Callable[[list[str]], list[str]]
"""A batch labeller: takes the sentences of one trace, in order, and returns one label each."""


@dataclass(frozen=True)
class Sentence:
    """A sentence of a larger text: ``text == source[start:end]``."""

    start: int
    end: int
    text: str


@dataclass(frozen=True)
class LabeledSentence:
    """A sentence with its strategy label; ``text == source[start:end]``."""

    start: int
    end: int
    text: str
    label: str
