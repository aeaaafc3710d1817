"""The model organism: a tiny base/RL pair trained by the project on a verifiable task.

``train(recipe_path, out_dir)`` reproduces it from scratch (pretraining, competence gate,
GRPO seeds); ``evaluate()`` measures the numbers of its card into ``results.json`` and
``write_card()`` renders ``README.md``; ``load_task()``, ``checkpoint()`` and
``load_splits()`` open the shipped organism in ``data/organism-sharpening``.

Names are imported on first use: ``rlvr.organism.task`` needs no torch.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from ..lazy import lazy_exports

# public name -> submodule that defines it
_EXPORTS = {
    "CorpusSpec": "corpus",
    "evaluate": "evaluate",
    "write_card": "evaluate",
    "sample_completions": "generate",
    "RLSpec": "grpo",
    "grpo_train": "grpo",
    "profile": "measure",
    "gate": "pipeline",
    "train": "pipeline",
    "ModelSpec": "pretrain",
    "PretrainSpec": "pretrain",
    "build_model": "pretrain",
    "competence": "pretrain",
    "encode": "pretrain",
    "pretrain": "pretrain",
    "read_problems": "problem_files",
    "write_problems": "problem_files",
    "EvalSpec": "recipe",
    "GateSpec": "recipe",
    "Recipe": "recipe",
    "default_dir": "recipe",
    "load_recipe": "recipe",
    "checkpoint": "store",
    "load_splits": "store",
    "load_task": "store",
    "save_checkpoint": "store",
    "ALPHABET": "task",
    "FORMATS": "task",
    "SEGMENT_LABELS": "task",
    "PermutationChain": "task",
    "Problem": "task",
    "Segment": "task",
    "TraceStats": "task",
    "build_tokenizer": "tokenizer",
}

__all__ = list(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


# ``evaluate`` and ``pretrain`` name both a function and the submodule defining it. Importing
# the submodule (e.g. ``from .evaluate import write_card`` in ``pipeline``) makes Python set
# the package attribute of that name to the module, after which
# ``from rlvr.organism import evaluate`` would give the module. The package keeps the function.
_SHADOWED = frozenset(name for name, mod in _EXPORTS.items() if name == mod)


class _Package(types.ModuleType):
    def __setattr__(self, name: str, value: Any) -> None:
        if name in _SHADOWED and isinstance(value, types.ModuleType):
            return  # the submodule stays reachable through sys.modules
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
