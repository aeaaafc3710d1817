"""What the organism's TRL runs (GRPO, SFT) share: loading the base, the trainer arguments
for one CPU process, weight snapshots during training, and saving the result."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

__all__ = ["cpu_trainer_args", "load_base", "save_trained", "snapshot_callback"]


def load_base(base_dir: str | os.PathLike[str]) -> tuple[Any, Any]:
    """``(model, tokenizer)`` of the checkpoint to train from, in fp32."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base_dir = Path(base_dir)
    if not (base_dir / "config.json").exists():
        raise ValueError(f"no checkpoint in {base_dir}: pretrain the base first")
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    return model, AutoTokenizer.from_pretrained(base_dir)


def cpu_trainer_args(
    output_dir: str, *, seed: int, steps: int, lr: float, max_grad_norm: float
) -> dict[str, Any]:
    """The keywords every organism run passes to TRL's config (``GRPOConfig``, ``SFTConfig``).

    One CPU process in fp32, a constant learning rate for exactly ``steps`` optimiser steps,
    one seed for the model and the data order, and nothing saved or reported by the trainer
    (the caller saves the model it returns).
    """
    return {
        "output_dir": output_dir,
        "use_cpu": True,
        "bf16": False,
        "fp16": False,
        "gradient_accumulation_steps": 1,
        "learning_rate": lr,
        "lr_scheduler_type": "constant",
        "max_grad_norm": max_grad_norm,
        "max_steps": steps,
        "num_train_epochs": 1_000_000,  # max_steps decides
        "seed": seed,
        "data_seed": seed,
        "logging_steps": 10_000,
        "save_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
    }


def snapshot_callback(steps: Sequence[int], folder: str | os.PathLike[str] | None) -> Any:
    """A transformers ``TrainerCallback`` saving the model to ``folder/step-<N>`` after each
    of the given optimiser steps."""
    from transformers import TrainerCallback

    if folder is None:
        raise ValueError("snapshots need a snapshot_dir to write them to")
    wanted, root = {int(s) for s in steps}, Path(folder)

    class _Snapshots(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **_: Any):
            if state.global_step in wanted and model is not None:
                model.save_pretrained(root / f"step-{state.global_step}", safe_serialization=True)

    return _Snapshots()


def save_trained(model: Any, tokenizer: Any, out_dir: str | os.PathLike[str]) -> None:
    """Save a trained model for sampling: eval mode, the KV cache back on (trainers turn it
    off), safetensors, with its tokenizer."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.eval()
    model.config.use_cache = True
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
