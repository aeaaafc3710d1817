"""Supervised fine-tuning on the organism with TRL's ``SFTTrainer`` (distillation).

The data are ``(problem, completion)`` pairs, e.g. a teacher's correct traces; the loss
covers the completion and its closing ``<eos>`` (TRL's prompt-completion format, the same
tokens the organism's pretraining trains on).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .task import PermutationChain, Problem
from .trl_runs import cpu_trainer_args, load_base, save_trained, snapshot_callback

__all__ = ["SFTSpec", "sft_train"]


@dataclass(frozen=True)
class SFTSpec:
    """SFT settings (TRL names in brackets): optimiser ``steps`` [max_steps], ``batch_size``
    [per_device_train_batch_size], constant learning rate ``lr``, ``weight_decay``,
    ``max_grad_norm``."""

    steps: int = 100
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError(f"steps={self.steps} and batch_size={self.batch_size} must be >= 1")
        if not 0 < self.lr <= 1e-2:
            raise ValueError(f"lr={self.lr} must lie in (0, 1e-2]")


def sft_train(
    task: PermutationChain,
    base_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    data: Sequence[tuple[Problem, str]],
    spec: SFTSpec,
    seed: int,
    snapshots: Sequence[int] = (),
    snapshot_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Fine-tune the checkpoint in ``base_dir`` on ``data``; save to ``out_dir``.

    Completions end with the task's ``.`` (as the verifier wants). Returns
    ``{"seconds", "steps", "seed", "n_examples", "final_loss"}``. ``snapshots`` as in
    :func:`rlvr.organism.grpo.grpo_train`.
    """
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    if not data:
        raise ValueError("no SFT examples: pass (problem, completion) pairs")
    bad = [c for _, c in data if not c.endswith(".")]
    if bad:
        raise ValueError(f"completion {bad[0]!r} does not end with '.': pass finished answers")
    model, tokenizer = load_base(base_dir)
    rows = Dataset.from_list([{"prompt": task.prompt(p), "completion": c} for p, c in data])
    callbacks = [snapshot_callback(snapshots, snapshot_dir)] if snapshots else []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        config = SFTConfig(
            **cpu_trainer_args(
                tmp, seed=seed, steps=spec.steps, lr=spec.lr, max_grad_norm=spec.max_grad_norm
            ),
            per_device_train_batch_size=spec.batch_size,
            weight_decay=spec.weight_decay,
            completion_only_loss=True,
            max_length=task.budget + 8,
        )
        trainer = SFTTrainer(
            model=model,
            args=config,
            train_dataset=rows,
            processing_class=tokenizer,
            callbacks=callbacks,
        )
        out = trainer.train()
        seconds = time.perf_counter() - t0
        model = trainer.model
    save_trained(model, tokenizer, out_dir)
    return {
        "seconds": seconds,
        "steps": spec.steps,
        "seed": seed,
        "n_examples": len(data),
        "final_loss": float(out.training_loss),
    }
