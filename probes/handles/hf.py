"""The Hugging Face backend: a plain ``transformers`` causal LM driven with torch hooks.

The fast path: edit and read hooks on the decoder layers are registered per call and
removed in ``finally``; stopping early raises inside the hook at the deepest requested site.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import contextmanager

import torch

from ..sites import Site, hidden_from, replace_hidden
from .base import Edit, ForwardRequest, ModelHandle, RunOutput, gather

__all__ = ["HFHandle"]


class _Stop(Exception):
    """Raised inside a hook to end a forward pass after the last site it needs."""


class HFHandle(ModelHandle):
    """A plain ``transformers`` causal LM driven with torch hooks."""

    backend = "hf"

    def layer_module(self, layer: int) -> torch.nn.Module:
        mod = self.model
        for part in self.layers_path.split("."):
            mod = getattr(mod, part)
        return mod[layer]

    @contextmanager
    def hooks(
        self,
        edits: Mapping[Site, Edit],
        reads: Sequence[Site] = (),
        index=None,
        stop_site: Site | None = None,
        acts: dict | None = None,
    ):
        """Register edit/read hooks for the duration of the block; always removed."""
        handles = []
        sites = sorted(set(edits) | set(reads))

        def apply(site: Site, h: torch.Tensor) -> torch.Tensor:
            if site in edits:
                h = edits[site](h)
            if site in reads and acts is not None:
                acts[site] = gather(h, index)
            return h

        try:
            for site in sites:
                mod = self.layer_module(site.layer)
                if site.kind == "resid_pre":

                    def pre(module, args, kwargs, site=site):
                        if args:
                            h = apply(site, args[0])
                            args = (h, *args[1:])
                        else:
                            kwargs["hidden_states"] = apply(site, kwargs["hidden_states"])
                        if site == stop_site:
                            raise _Stop
                        return args, kwargs

                    handles.append(mod.register_forward_pre_hook(pre, with_kwargs=True))
                else:

                    def post(module, args, output, site=site):
                        new = apply(site, hidden_from(output))
                        if site == stop_site:
                            raise _Stop
                        return replace_hidden(output, new)

                    handles.append(mod.register_forward_hook(post))
            yield
        finally:
            for h in handles:
                h.remove()

    def _forward(self, request: ForwardRequest) -> RunOutput:
        r = request
        acts: dict[Site, torch.Tensor] = {}
        with self.hooks(r.edits, r.reads, r.index, r.stop_site, acts):
            try:
                out = self.model(
                    input_ids=r.input_ids,
                    attention_mask=r.attention_mask,
                    position_ids=r.position_ids,
                    use_cache=r.use_cache,
                    **{self._cache_kwarg: r.past_key_values},
                    **self._keep(r.logits_to_keep),
                )
            except _Stop:
                return RunOutput(None, acts, r.past_key_values)
        cache = getattr(out, "cache", None)  # transformers >= 5.2x
        if cache is None:
            cache = getattr(out, "past_key_values", None)
        return RunOutput(out.logits, acts, cache if r.use_cache else None)
