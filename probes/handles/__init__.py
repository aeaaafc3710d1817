"""Model handles: one small protocol over a loaded causal LM, three adapters.

A handle exposes the tokenizer, ``n_layers``, ``d_model``, a :class:`Fingerprint`, and
one primitive, :meth:`ModelHandle.run`: a forward pass that can *read* residual
activations at Sites (optionally only at chosen positions), *edit* them, stop after
the last layer it needs, and carry a KV cache. Extraction, steering, the sampler and
the hybrid decoder all go through ``run``.

One module a concern:

- :mod:`.base` — the protocol, :class:`ModelHandle` (``run``, ``encode``, checks), the
  :class:`ForwardRequest` that ``run`` hands a backend's ``_forward``, and
  :class:`RunOutput`; :mod:`.fingerprint` — :class:`Fingerprint`.
- :mod:`.hf` — :class:`HFHandle`, a plain ``transformers`` model, torch hooks (the fast path).
- :mod:`.nnsight` — :class:`NNsightHandle`, an nnsight ``TransformersModel``; every pass
  is a trace (extra ``rsteer[nnsight]``).
- :mod:`.transformerlens` — :class:`TLHandle`, a TransformerLens 4 ``TransformerBridge``;
  hook points by name (extra ``rsteer[transformerlens]``).
- :mod:`.checkpoint` — loading a checkpoint folder and the tokenizer saved with it.

:func:`wrap` (here) accepts any of those objects (or a local checkpoint path) and returns
the matching handle. The forward functions the adapters build on (position ids, caches,
argument names) live in :mod:`rlvr.generation.forward`; import them from there. nnsight
and transformer-lens are imported only inside their backend module, and only where a
plain HF model is re-wrapped with them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from .base import Edit, ForwardRequest, ModelHandle, RunOutput, gather
from .checkpoint import checkpoint_tokenizer, load_hf, load_tokenizer
from .fingerprint import Fingerprint, canonical_parameters, fingerprint_of
from .hf import HFHandle
from .nnsight import NNsightHandle
from .transformerlens import TLHandle

__all__ = [
    "BACKENDS",
    "Edit",
    "Fingerprint",
    "ForwardRequest",
    "HFHandle",
    "ModelHandle",
    "NNsightHandle",
    "RunOutput",
    "TLHandle",
    "canonical_parameters",
    "checkpoint_tokenizer",
    "config_summary",
    "fingerprint_of",
    "gather",
    "load_hf",
    "load_tokenizer",
    "wrap",
]

BACKENDS = ("hf", "nnsight", "transformerlens")


def wrap(
    model: Any,
    tokenizer: Any = None,
    backend: str | None = None,
    *,
    device: str | None = None,
    dtype: torch.dtype | None = None,
    device_map: str | None = None,
    remote: bool = False,
) -> ModelHandle:
    """Return a handle for a HF model, nnsight model, TransformerBridge, handle or path.

    ``backend`` picks the adapter when ``model`` is a path (default ``"hf"``) or
    re-wraps a HF model (``"nnsight"``, ``"transformerlens"``).

    One checkpoint gets one fingerprint and one tokenization whichever adapter holds it:
    without ``tokenizer=``, an nnsight model or a TransformerBridge is given the tokenizer
    saved with its checkpoint, loaded as :func:`load_hf` loads it, not the wrapper's own
    (the bridge's adds a BOS token; for a saved ``tokenizers`` tokenizer ``AutoTokenizer``
    may pick another class). Pass ``tokenizer=`` to choose one yourself.
    """
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}: use one of {', '.join(BACKENDS)}")
    if isinstance(model, ModelHandle):
        if backend is None or backend == model.backend:
            return model
        return wrap(model.model, model.tokenizer, backend, remote=remote)
    if isinstance(model, (str, Path)):
        hf, tok = load_hf(model, device=device, dtype=dtype, device_map=device_map)
        return wrap(hf, tokenizer or tok, backend or "hf", remote=remote)
    cls = type(model).__name__
    mod = type(model).__module__
    if mod.startswith("nnsight"):
        return NNsightHandle(model, tokenizer, remote=remote)
    if cls == "TransformerBridge":
        return TLHandle(model, tokenizer)
    if isinstance(model, torch.nn.Module) and hasattr(model, "config"):
        if backend in (None, "hf"):
            return HFHandle(model, tokenizer)
        if tokenizer is None:
            path = getattr(model.config, "_name_or_path", "")
            tokenizer = load_tokenizer(path) if path and Path(path).exists() else None
        if backend == "nnsight":
            return NNsightHandle.from_hf(model, tokenizer, remote=remote)
        return TLHandle.from_hf(model, tokenizer)
    raise TypeError(
        f"cannot wrap a {cls}: pass a transformers PreTrainedModel, an nnsight "
        "TransformersModel, a TransformerLens TransformerBridge, or a checkpoint path"
    )


def config_summary(handle: ModelHandle) -> str:
    return json.dumps(handle.fingerprint.to_dict())
