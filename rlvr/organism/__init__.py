"""The model organism: a tiny base/RL pair trained by the project on a verifiable task.

``train(recipe_path, out_dir)`` reproduces it from scratch (pretraining, competence gate,
GRPO seeds); ``evaluate()`` measures the numbers of its card into ``results.json`` and
``write_card()`` renders ``README.md``; ``load_task()``, ``checkpoint()`` and
``load_splits()`` open the shipped organism in ``data/organism``.
"""

from .evaluate import evaluate, write_card
from .generate import sample_completions
from .grpo import RLSpec, grpo_train
from .measure import profile
from .pipeline import checkpoint, gate, load_splits, load_task, train
from .pretrain import ModelSpec, PretrainSpec, build_model, competence, encode, pretrain
from .recipe import EvalSpec, GateSpec, Recipe, default_dir, load_recipe
from .task import (
    ALPHABET,
    FORMATS,
    SEGMENT_LABELS,
    CorpusSpec,
    PermutationChain,
    Problem,
    Segment,
    TraceStats,
    read_problems,
    write_problems,
)
from .tokenizer import build_tokenizer

__all__ = [
    "ALPHABET",
    "FORMATS",
    "SEGMENT_LABELS",
    "CorpusSpec",
    "EvalSpec",
    "GateSpec",
    "ModelSpec",
    "PermutationChain",
    "PretrainSpec",
    "Problem",
    "RLSpec",
    "Recipe",
    "Segment",
    "TraceStats",
    "build_model",
    "build_tokenizer",
    "checkpoint",
    "competence",
    "default_dir",
    "encode",
    "evaluate",
    "gate",
    "grpo_train",
    "load_recipe",
    "load_splits",
    "load_task",
    "pretrain",
    "profile",
    "read_problems",
    "sample_completions",
    "train",
    "write_card",
    "write_problems",
]
