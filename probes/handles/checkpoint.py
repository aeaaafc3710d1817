"""Checkpoint folders: the model and the tokenizer saved with it, loaded the same way for
every backend (the toolkit never downloads)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

__all__ = ["checkpoint_tokenizer", "load_hf", "load_tokenizer"]


def load_tokenizer(path: str | Path):
    """The tokenizer saved in a checkpoint folder.

    A plain ``tokenizers`` tokenizer (e.g. the organism's character tokenizer) is loaded as
    such: ``AutoTokenizer`` would pick the architecture's default class (for Qwen2 one
    that drops spaces) instead of what was saved.
    """
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    cfg = Path(path) / "tokenizer_config.json"
    if cfg.exists():
        cls = json.loads(cfg.read_text()).get("tokenizer_class")
        if cls in ("TokenizersBackend", "PreTrainedTokenizerFast"):
            return PreTrainedTokenizerFast.from_pretrained(str(path))
    return AutoTokenizer.from_pretrained(str(path))


def checkpoint_tokenizer(model: torch.nn.Module, holder: str | None):
    """The tokenizer saved with ``model``'s checkpoint, loaded as :func:`load_hf` loads it.

    Every adapter tokenizes one checkpoint the same way. Returns None when the checkpoint
    folder is unknown, unless ``holder`` names a wrapper whose own tokenizer must not be
    used: then raise with what to do.
    """
    path = str(getattr(getattr(model, "config", None), "_name_or_path", "") or "")
    if path and Path(path).is_dir():
        return load_tokenizer(path)
    if holder is None:
        return None
    hint = (
        f"pass the checkpoint's tokenizer: probes.wrap(bridge, tokenizer=...) ({holder}'s "
        "own tokenizer adds a BOS token, so text would be tokenized unlike the HF model)"
    )
    if not path:
        raise ValueError(f"cannot find the checkpoint this {holder} was loaded from: {hint}")
    try:
        return load_tokenizer(path)
    except OSError as e:
        raise ValueError(f"cannot load the tokenizer of {path!r} ({e}): {hint}") from e


def load_hf(
    path: str | Path,
    device: str | None = None,
    dtype: torch.dtype | None = None,
    device_map: str | None = None,
):
    """Load a local (or cached) checkpoint with transformers; never downloads when offline."""
    from transformers import AutoModelForCausalLM

    p = Path(path)
    if not p.exists() and not str(path).count("/") == 1:
        raise ValueError(
            f"no checkpoint at {path!r}: give a local folder with config.json and weights "
            "(or a hub id such as 'Qwen/Qwen2.5-Math-1.5B' on a machine that can download)"
        )
    kwargs: dict[str, Any] = {}
    if dtype is not None:
        kwargs["dtype"] = dtype
    if device_map is not None:
        kwargs["device_map"] = device_map
    model = AutoModelForCausalLM.from_pretrained(str(path), **kwargs)
    if device is not None and device_map is None:
        model = model.to(device)
    model.eval()
    return model, load_tokenizer(path)
