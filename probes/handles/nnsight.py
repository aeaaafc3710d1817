"""The nnsight backend: an nnsight ``TransformersModel``; every pass is a ``trace``.

Modules are touched in execution order; ``remote=True`` is passed through for NDIF. nnsight
is an optional extra (``pip install "rsteer[nnsight]"``): it is imported only here, and only
to wrap a plain HF model (:meth:`NNsightHandle.from_hf`); a model nnsight already holds
needs nothing imported.
"""

from __future__ import annotations

from typing import Any

from rlvr.generation.forward import new_cache

from ..sites import Site, exec_order
from .base import ForwardRequest, ModelHandle, RunOutput, gather, require
from .checkpoint import checkpoint_tokenizer

__all__ = ["NNsightHandle"]


class NNsightHandle(ModelHandle):
    """An nnsight ``TransformersModel``: reads and edits are done inside ``trace``."""

    backend = "nnsight"

    def __init__(self, nn_model: Any, tokenizer: Any = None, remote: bool = False) -> None:
        self.nn = nn_model
        self.remote = remote
        if tokenizer is None:
            tokenizer = checkpoint_tokenizer(nn_model._module, None) or getattr(
                nn_model, "tokenizer", None
            )
        super().__init__(nn_model._module, tokenizer)

    @classmethod
    def from_hf(cls, model: Any, tokenizer: Any = None, remote: bool = False) -> NNsightHandle:
        """Wrap a plain HF model in an nnsight ``TransformersModel`` (needs the nnsight extra)."""
        nns = require("nnsight.modeling.transformers", "nnsight", "nnsight")
        return cls(nns.TransformersModel(model, tokenizer=tokenizer), tokenizer, remote=remote)

    def _envoy_layer(self, layer: int):
        env = self.nn
        for part in self.layers_path.split("."):
            env = getattr(env, part)
        return env[layer]

    def _forward(self, request: ForwardRequest) -> RunOutput:
        r = request
        edits, reads, index, stop_site = r.edits, r.reads, r.index, r.stop_site
        use_cache, past_key_values = r.use_cache, r.past_key_values
        saved: dict[Site, Any] = {}
        logits = None
        if use_cache and past_key_values is None:  # a cache the caller gets back, filled
            past_key_values = new_cache(self.model)
        kwargs = {
            "attention_mask": r.attention_mask,
            "position_ids": r.position_ids,
            "use_cache": use_cache,
            self._cache_kwarg: past_key_values,
            **self._keep(r.logits_to_keep),
        }
        # nnsight requires touching modules in execution order.
        sites = sorted(set(edits) | set(reads), key=exec_order)
        with self.nn.trace(r.input_ids, remote=self.remote, **kwargs) as tracer:
            for site in sites:
                env = self._envoy_layer(site.layer)
                if site.kind == "resid_pre":
                    h = env.input
                    if site in edits:
                        env.input = edits[site](h)
                        h = env.input
                else:
                    h = env.output
                    if isinstance(h, tuple):  # older transformers return tuples
                        h0 = h[0]
                        if site in edits:
                            env.output = (edits[site](h0), *h[1:])
                        h = env.output[0]
                    elif site in edits:
                        env.output = edits[site](h)
                        h = env.output
                if site in reads:
                    saved[site] = gather(h, index).save()
                if site == stop_site:
                    tracer.stop()
            if stop_site is None:
                out = self.nn.output.save()
        acts = {s: v for s, v in saved.items()}
        if stop_site is None:
            logits = out.logits
        return RunOutput(logits, acts, past_key_values if use_cache else None)
