"""The hooks :meth:`steering.Steer.applied` puts on a model's own forward and ``generate``.

Inside ``with steer.applied(handle):`` a HF or nnsight model's own forward is steered
through torch hooks on its decoder layers, with the positions semantics of
:func:`rlvr.generation.sampling.sample`: a forward with an empty KV cache starts a sequence (its real
tokens are the prompt), and the next forwards with that cache are steps 1, 2, ... A
TransformerLens bridge's own forward is refused (``handle.run`` is steered instead).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

from probes.sites import Site, hidden_from, replace_hidden
from rlvr.generation.controllers import StepContext
from rlvr.generation.forward import position_ids_from_mask

if TYPE_CHECKING:
    from .steer import Steer

__all__ = ["ModelHooks"]

_CACHE_KWARGS = ("cache", "past_key_values")
_MISSING = object()


class ModelHooks:
    """The hooks :meth:`Steer.applied` puts on a model's own forward (and ``generate``)."""

    def __init__(self, steer: Steer, handle: Any, prompt_lengths) -> None:
        self.steer = steer
        self.handle = handle
        self.prompt_lengths = prompt_lengths
        self.inside_run = 0
        self.hooks: list[Any] = []
        self.patched: list[tuple[Any, Any]] = []
        self.edits: dict[Site, Callable] | None = None
        self.gen: dict[str, Any] | None = None  # the generate call in progress
        self.seq: dict[str, Any] | None = None  # the sequence being decoded

    # -- install / remove ------------------------------------------------------------------
    def install(self) -> None:
        bridge = getattr(self.handle, "bridge", None)
        if bridge is not None:
            self.hooks.append(bridge.register_forward_pre_hook(self._refuse_bridge))
            return
        model = getattr(self.handle, "model", None)
        if not isinstance(model, torch.nn.Module):
            return
        from probes.sites import decoder_layers_path

        layers = model
        for part in decoder_layers_path(model, self.handle.n_layers).split("."):
            layers = getattr(layers, part)
        self.hooks.append(model.register_forward_pre_hook(self._start, with_kwargs=True))
        self.hooks.append(model.register_forward_hook(self._end, always_call=True))
        for site in self.steer.sites:
            mod = layers[site.layer]
            if site.kind == "resid_pre":
                self.hooks.append(mod.register_forward_pre_hook(self._pre(site), with_kwargs=True))
            else:
                self.hooks.append(mod.register_forward_hook(self._post(site)))
        if hasattr(model, "generate"):
            self.patched.append((model, model.__dict__.get("generate", _MISSING)))
            model.generate = self._generate(model, model.generate)

    def remove(self) -> None:
        for h in self.hooks:
            h.remove()
        self.hooks = []
        for model, before in reversed(self.patched):
            if before is _MISSING:
                model.__dict__.pop("generate", None)
            else:
                model.generate = before
        self.patched = []

    def _refuse_bridge(self, module, args):
        if not self.inside_run:
            raise RuntimeError(
                "Steer.applied cannot steer a TransformerLens bridge's own forward or "
                "generate: call handle.run inside the block, or generate with "
                "rlvr.generation.sampling.sample(handle, prompts, controller=steer)"
            )

    # -- generate ----------------------------------------------------------------------
    def _generate(self, model, inner):
        def generate(*args, **kwargs):
            cfg = kwargs.get("generation_config") or model.generation_config
            get = lambda k, d=None: kwargs.get(k, getattr(cfg, k, d))  # noqa: E731
            if get("use_cache", True) is False:
                raise ValueError(
                    "Steer.applied needs generate's KV cache to tell generated tokens from the "
                    "prompt: drop use_cache=False (or steer rlvr.generation.sampling.sample(..., "
                    "use_cache=False) instead)"
                )
            if callable(self.steer.positions) and (
                (get("num_beams", 1) or 1) > 1
                or kwargs.get("assistant_model") is not None
                or get("prompt_lookup_num_tokens") is not None
            ):
                raise ValueError(
                    "a decision function cannot steer beam search or assisted decoding under "
                    "Steer.applied (rows are reordered and tokens rolled back): use greedy or "
                    "sampling, or rlvr.generation.sampling.sample"
                )
            first = args[0] if args else None
            for k in ("input_ids", "inputs", "inputs_embeds"):
                if first is None:
                    first = kwargs.get(k)
            outer, self.gen = self.gen, {"batch": None if first is None else first.shape[0]}
            try:
                return inner(*args, **kwargs)
            finally:
                self.gen = outer

        return generate

    # -- the model's forward -------------------------------------------------------------
    def _start(self, module, args, kwargs):
        self.edits = None
        if self.inside_run:
            return None
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is None:
            emb = kwargs.get("inputs_embeds")
            if emb is None:
                raise ValueError(
                    "Steer.applied: the forward got neither input_ids nor inputs_embeds"
                )
            ids = torch.zeros(emb.shape[:2], dtype=torch.long, device=emb.device)
        b, s = ids.shape
        cache = next((kwargs[k] for k in _CACHE_KWARGS if kwargs.get(k) is not None), None)
        cached = int(cache.get_seq_length()) if cache is not None else 0
        mask = kwargs.get("attention_mask")
        if mask is None:
            mask = torch.ones(b, cached + s, dtype=torch.long, device=ids.device)
        if mask.ndim != 2 or mask.shape != (b, cached + s):
            raise ValueError(
                f"Steer.applied needs a 2-D attention mask over cache + input ({b}, "
                f"{cached + s}), got {tuple(mask.shape)}: pass the mask of the whole sequence"
            )
        if cached == 0:
            ctx = StepContext.for_forward(ids, mask, None, self.prompt_lengths)
            per = 1
            if self.gen is not None and self.gen["batch"]:
                if b % self.gen["batch"]:
                    raise ValueError(
                        f"generate ran {b} rows for {self.gen['batch']} prompts: cannot tell "
                        "which prompt a row belongs to"
                    )
                per = b // self.gen["batch"]
            ctx.prompt_index = torch.arange(b, device=ids.device) // per
            ctx.sample_index = torch.arange(b, device=ids.device) % per
            step = 0
            self.seq = {
                "cache": cache,
                "step": 0,
                "b": b,
                "lengths": ctx.prompt_lengths,
                "generated": ctx.generated,
                "pi": ctx.prompt_index,
                "si": ctx.sample_index,
                "extra": ctx.extra,
            }
        else:
            seq = self.seq
            if seq is None or seq["cache"] is not cache:
                raise ValueError(
                    "Steer.applied: this forward continues a KV cache that was not started "
                    "inside the block, so its prompt is unknown: start the generation (the "
                    "forward with an empty cache) inside the block"
                )
            if b != seq["b"]:
                raise ValueError(
                    f"Steer.applied: the batch changed from {seq['b']} to {b} rows in the "
                    "middle of generate: cannot keep rows aligned"
                )
            seq["step"] += 1
            seq["generated"] = torch.cat([seq["generated"], ids], dim=1)
            step = seq["step"]
            ctx = StepContext(
                step=step,
                input_ids=ids,
                position_ids=position_ids_from_mask(mask)[:, -s:],
                attention_mask=mask,
                prompt_lengths=seq["lengths"],
                generated=seq["generated"],
                done=torch.zeros(b, dtype=torch.bool, device=ids.device),
                prompt_index=seq["pi"],
                sample_index=seq["si"],
                extra=seq["extra"],
            )
        self.edits = self.steer.edits(step, ctx) or None
        return None

    def _end(self, module, args, output):
        self.edits = None
        if self.seq is not None and self.seq["cache"] is None and not self.inside_run:
            # the model made its own cache: later forwards must continue that one
            cache = getattr(output, "cache", None)  # an empty cache is falsy: test for None
            self.seq["cache"] = (
                cache if cache is not None else getattr(output, "past_key_values", None)
            )

    def _pre(self, site: Site):
        def pre(module, args, kwargs):
            fn = self.edits.get(site) if self.edits else None
            if fn is None:
                return None
            if args:
                return (fn(args[0]), *args[1:]), kwargs
            kwargs["hidden_states"] = fn(kwargs["hidden_states"])
            return args, kwargs

        return pre

    def _post(self, site: Site):
        def post(module, args, output):
            fn = self.edits.get(site) if self.edits else None
            if fn is None:
                return None
            return replace_hidden(output, fn(hidden_from(output)))

        return post
