"""One forward pass of a causal LM, as the loop and the model handles both need it.

- :func:`position_ids_from_mask` — position ids that skip left padding;
- :func:`new_cache` — an empty transformers KV cache for a model (dynamic, or
  pre-allocated: :mod:`rlvr.generation.kv_cache`), and :func:`cache_kind`, which one a loop uses;
- :func:`forward_arg_names` — how this transformers version names the cache and the
  last-logits arguments of ``forward``;
- :class:`Runner` — what the loop drives: ``.tokenizer`` and ``.run(...)`` returning a
  :class:`RunnerOutput` (``.logits``, ``.past_key_values``); ``probes`` handles satisfy it;
- :class:`PlainHF` — a plain transformers causal LM driven as a :class:`Runner` (no
  residual edits), and :func:`as_runner`, which gives the loop either that or the handle
  it was given.

``probes.handles`` builds its adapters on these, and :mod:`rlvr.generation.sampling` drives either
kind of model through them; this module imports neither ``probes`` nor the loop.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

import torch

__all__ = [
    "PlainHF",
    "PlainOutput",
    "Runner",
    "RunnerOutput",
    "as_runner",
    "cache_kind",
    "forward_arg_names",
    "module_of",
    "new_cache",
    "position_ids_from_mask",
]


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position ids that skip left padding: ``cumsum(mask) - 1`` (pads get 0)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


CACHE_KINDS = ("static", "dynamic")
# ``use_cache=True`` takes the pre-allocated cache from this many positions a row (prompt +
# max_new_tokens) on: measured on a CPU (bench/hybrid.py, bench/sampler_passk.py, see
# docs/ARCHITECTURE.md), it saves the concatenation's growing copies on long sequences
# (0.73-0.95x the time at ~200 positions), while on short ones torch's CPU attention over
# its strided views costs more than the copies (1.1-1.3x on the organism's 67 positions).
STATIC_FROM = 128


def cache_kind(use_cache: bool | str, runner: Any = None, length: int | None = None) -> str | None:
    """The KV cache a loop uses: None (``use_cache=False``: recompute every step),
    ``"static"`` (pre-allocated, :mod:`rlvr.generation.kv_cache`) or ``"dynamic"`` (``DynamicCache``).

    ``True`` means ``"static"`` for rows of at least :data:`STATIC_FROM` positions
    (``length``: the prompt plus ``max_new_tokens``), else ``"dynamic"``. A handle on another
    backend than plain transformers (nnsight, TransformerLens) always gets the dynamic one.
    """
    if use_cache is False:
        return None
    if use_cache is True:
        kind = "static" if length is not None and length >= STATIC_FROM else "dynamic"
    elif isinstance(use_cache, str) and use_cache in CACHE_KINDS:
        kind = use_cache
    else:
        raise ValueError(
            f"use_cache={use_cache!r}: give True, False or one of {', '.join(CACHE_KINDS)}"
        )
    if kind == "static" and getattr(runner, "backend", "hf") != "hf":
        return "dynamic"
    return kind


def new_cache(module: torch.nn.Module | None, capacity: int | None = None):
    """An empty transformers KV cache for ``module``.

    Without ``capacity``: a ``DynamicCache`` (sliding-window aware when possible), which
    grows by concatenation. With ``capacity`` (the longest sequence expected, e.g. prompt
    plus ``max_new_tokens``) and a model whose every layer attends to the full sequence: a
    cache of :class:`rlvr.generation.kv_cache.FilledStaticLayer` s, allocated once (grown by doubling
    should a sequence outrun it). Other models get the ``DynamicCache``.
    """
    if capacity is not None and module is not None:
        from .kv_cache import filled_static_cache

        cache = filled_static_cache(module, capacity)
        if cache is not None:
            return cache
    from transformers import DynamicCache

    try:
        return DynamicCache(config=module.config) if module is not None else DynamicCache()
    except TypeError:  # transformers < 4.56 takes no config
        return DynamicCache()


def forward_arg_names(model: torch.nn.Module) -> tuple[str, str | None]:
    """How this model's ``forward`` names the KV cache and the last-logits argument.

    transformers >= 5.2x says ``cache`` (``past_key_values`` before) and ``logits_to_keep``
    (``num_logits_to_keep`` before, or nothing at all).
    """
    params = inspect.signature(model.forward).parameters
    cache = "cache" if "cache" in params else "past_key_values"
    keep = next((k for k in ("logits_to_keep", "num_logits_to_keep") if k in params), None)
    return cache, keep


class RunnerOutput(Protocol):
    """What :meth:`Runner.run` returns: the logits ``(batch, seq, vocab)`` (the last
    ``logits_to_keep`` positions when asked) and the KV cache after the pass (None without
    ``use_cache``)."""

    @property
    def logits(self) -> torch.Tensor | None: ...

    @property
    def past_key_values(self) -> Any: ...


@runtime_checkable
class Runner(Protocol):
    """Something the generation loop can run: a tokenizer and one forward pass.

    :func:`rlvr.generation.sampling.sample` uses ``.tokenizer`` and ``.run`` (the hybrid
    decoder runs its router model through the same ``.run``); ``edits`` maps a site to
    ``fn(h) -> h'`` on the residual there, where the controllers' reads and edits go (a
    runner that cannot edit refuses a non-empty one). Optional, read with ``getattr``: a
    ``model`` attribute (the torch module: config, device, generation config) and a
    ``backend`` name (only ``"hf"`` gets the pre-allocated cache). The loop passes
    ``logits_to_keep`` only to a ``run`` that accepts it. :class:`PlainHF` and every
    ``probes`` handle are runners.
    """

    tokenizer: Any

    def run(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        *,
        edits: Mapping[Any, Callable[[torch.Tensor], torch.Tensor]] | None = None,
        position_ids: torch.Tensor | None = None,
        past_key_values: Any = None,
        use_cache: bool = False,
        logits_to_keep: int = 0,
    ) -> RunnerOutput: ...


class PlainOutput:
    """What :meth:`PlainHF.run` returns: ``logits`` and the (filled) ``past_key_values``."""

    __slots__ = ("logits", "past_key_values")

    def __init__(self, logits, past_key_values):
        self.logits = logits
        self.past_key_values = past_key_values


class PlainHF:
    """Drive a plain transformers causal LM as a :class:`Runner` (no edits)."""

    def __init__(self, model: torch.nn.Module, tokenizer: Any) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self._cache_kw, self._keep_kw = forward_arg_names(model)

    def run(
        self,
        input_ids,
        attention_mask=None,
        *,
        edits=None,
        position_ids=None,
        past_key_values=None,
        use_cache=False,
        logits_to_keep=0,
    ) -> PlainOutput:
        if edits:
            raise TypeError(
                "this controller edits the residual stream, which needs a model handle: "
                "sample(probes.wrap(model, tokenizer), ...) instead of a plain HF model"
            )
        kw = {self._cache_kw: past_key_values} if past_key_values is not None else {}
        if logits_to_keep and self._keep_kw:
            kw[self._keep_kw] = logits_to_keep
        out = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=use_cache,
            **kw,
        )
        return PlainOutput(out.logits, past_key_values)


def module_of(handle: Any) -> torch.nn.Module | None:
    """The torch module behind a handle (``handle.model``), or None."""
    mod = getattr(handle, "model", None)
    return mod if isinstance(mod, torch.nn.Module) else None


def as_runner(
    model: Runner | torch.nn.Module, tokenizer: Any
) -> tuple[Runner, torch.nn.Module | None]:
    """``(runner, module)``: a handle as it is, or a plain HF model wrapped in :class:`PlainHF`.

    ``runner`` is a :class:`Runner`; ``module`` is the torch module (for its config, device
    and generation config), None when the handle hides it.
    """
    if hasattr(model, "run") and hasattr(model, "tokenizer"):  # a Runner, duck-typed
        if tokenizer is not None and tokenizer is not model.tokenizer:
            raise ValueError("this handle has its own tokenizer: do not pass tokenizer=")
        return model, module_of(model)
    if isinstance(model, torch.nn.Module) and hasattr(model, "config"):
        if tokenizer is None:
            raise ValueError("a plain Hugging Face model needs tokenizer=...")
        return PlainHF(model, tokenizer), model
    raise TypeError(
        f"cannot sample from a {type(model).__name__}: pass a model handle "
        "(probes.wrap(...)) or a transformers causal LM with tokenizer=..."
    )
