"""The TransformerLens backend: a TransformerLens 4 ``TransformerBridge``, hook points by name.

Sites are named like the bridge's hooks (``blocks.{l}.hook_resid_post``);
``stop_at_layer`` stops early. transformer-lens is an optional extra (``pip install
"rsteer[transformerlens]"``): it is imported only here, and only to boot a bridge from a
plain HF model (:meth:`TLHandle.from_hf`).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch

from rlvr.generation.forward import new_cache

from ..sites import Site
from .base import ForwardRequest, ModelHandle, RunOutput, gather, require
from .checkpoint import checkpoint_tokenizer

__all__ = ["TLHandle"]


class TLHandle(ModelHandle):
    """A TransformerLens 4 ``TransformerBridge``: hook points named like Sites."""

    backend = "transformerlens"

    def __init__(self, bridge: Any, tokenizer: Any = None) -> None:
        self.bridge = bridge
        if tokenizer is None:
            # not the bridge's own: it adds a BOS token (and for Qwen2 is another class), so
            # the same text would give other tokens, activations and generations than HF
            tokenizer = checkpoint_tokenizer(bridge.original_model, "TransformerBridge")
        super().__init__(bridge.original_model, tokenizer)

    @classmethod
    def from_hf(cls, model: Any, tokenizer: Any = None) -> TLHandle:
        """Boot a bridge over a plain HF model saved in a checkpoint folder (needs the extra)."""
        tl = require("transformer_lens.model_bridge", "transformerlens", "transformerlens")
        path = getattr(model.config, "_name_or_path", "")
        if not path or not Path(path).exists():
            raise ValueError(
                "the TransformerLens bridge boots from a checkpoint folder: save the model "
                "with save_pretrained(path) and pass the path with backend='transformerlens'"
            )
        bridge = tl.TransformerBridge.boot_transformers(
            # the bridge rewires the modules it is given: hand it a copy, not the user's model
            path,
            device=str(next(model.parameters()).device),
            hf_model=copy.deepcopy(model),
            tokenizer=tokenizer,
        )
        return cls(bridge, tokenizer)

    def _forward(self, request: ForwardRequest) -> RunOutput:
        r = request
        edits, reads, index, stop_site = r.edits, r.reads, r.index, r.stop_site
        use_cache, past_key_values, input_ids = r.use_cache, r.past_key_values, r.input_ids
        acts: dict[Site, torch.Tensor] = {}
        hooks = []
        for site in sorted(set(edits) | set(reads)):

            def fn(h, hook, site=site):
                if site in edits:
                    h = edits[site](h)
                if site in reads:
                    acts[site] = gather(h, index)
                return h

            hooks.append((site.name, fn))
        kwargs: dict[str, Any] = dict(attention_mask=r.attention_mask, position_ids=r.position_ids)
        if past_key_values is not None or use_cache:
            if past_key_values is None:
                past_key_values = new_cache(self.model)
            kwargs.update(past_key_values=past_key_values, use_cache=True)
            if self._cache_kwarg == "cache":
                # The bridge's attention reads its cache from ``past_key_values`` or
                # ``layer_past``, but transformers >= 5 hands layers ``cache=``: without this
                # the cache stays empty and cached decoding silently ignores the context.
                kwargs["layer_past"] = past_key_values
            before = past_key_values.get_seq_length()
        if stop_site is not None:
            kwargs["stop_at_layer"] = stop_site.layer + 1
        with self.bridge.hooks(fwd_hooks=hooks):
            out = self.bridge(
                input_ids, return_type="logits" if stop_site is None else None, **kwargs
            )
        logits = out if stop_site is None else None
        if past_key_values is not None and stop_site is None:
            grown = past_key_values.get_seq_length() - before
            if grown != input_ids.shape[1]:
                raise RuntimeError(
                    f"the TransformerLens bridge grew the KV cache by {grown} tokens for "
                    f"{input_ids.shape[1]} new ones: cached decoding is broken with this "
                    "transformers/transformer-lens pair; decode without a cache (use_cache=False)"
                )
        return RunOutput(logits, acts, past_key_values if use_cache else None)
