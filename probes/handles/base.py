"""The handle protocol every backend implements: :class:`ModelHandle` and its one primitive.

A handle exposes the tokenizer, ``n_layers``, ``d_model``, a
:class:`~probes.handles.fingerprint.Fingerprint`, and :meth:`ModelHandle.run`: a forward
pass that can *read* residual activations at Sites (optionally only at chosen positions),
*edit* them, stop after the last layer it needs, and carry a KV cache.

``run`` checks its arguments once and hands a backend one :class:`ForwardRequest`; a
backend subclasses :class:`ModelHandle` and implements the abstract
``_forward(request) -> RunOutput`` (see :class:`ModelHandle` for what it must do).
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import torch

from rlvr.generation.forward import forward_arg_names, position_ids_from_mask

from ..sites import Site, as_sites, decoder_layers_path, exec_order
from .fingerprint import Fingerprint, fingerprint_of

__all__ = ["Edit", "ForwardRequest", "ModelHandle", "RunOutput", "gather", "require"]

Edit = Callable[[torch.Tensor], torch.Tensor]
"""An edit maps the residual at a site, shape (batch, seq, d_model), to its new value."""


@dataclass
class RunOutput:
    """What :meth:`ModelHandle.run` returns."""

    logits: torch.Tensor | None
    acts: dict[Site, torch.Tensor] = field(default_factory=dict)
    past_key_values: Any = None


@dataclass(frozen=True)
class ForwardRequest:
    """One forward pass as :meth:`ModelHandle.run` hands it to a backend, checked.

    ``attention_mask`` and ``position_ids`` are always given (``run`` fills the defaults:
    ones, ``cumsum(mask) - 1``); ``reads`` (depth order, no repeats) and the keys of
    ``edits`` (read-only) are checked :class:`~probes.sites.Site` s of this model;
    ``stop_site`` is the deepest site read when the pass stops early (then no cache is
    involved), else None. ``logits_to_keep`` (0 = all) may be honoured by the backend or
    not: ``run`` cuts the logits after.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    reads: tuple[Site, ...] = ()
    index: tuple[torch.Tensor, torch.Tensor] | None = None
    edits: Mapping[Site, Edit] = field(default_factory=lambda: MappingProxyType({}))
    stop_site: Site | None = None
    past_key_values: Any = None
    use_cache: bool = False
    logits_to_keep: int = 0


class ModelHandle(ABC):
    """Common protocol. A backend subclasses it and implements :meth:`_forward`.

    The contract of ``_forward(request: ForwardRequest) -> RunOutput``: run the model on
    ``request.input_ids`` with its ``attention_mask`` and ``position_ids``; at each site
    of ``request.edits`` replace the residual ``h`` with ``edits[site](h)``; for each site
    of ``request.reads`` put ``gather(h, request.index)`` (after any edit there) in
    ``acts``; sites run in the model's execution order (an edit at a later site can use
    what a read at an earlier one saw); stop after ``request.stop_site`` when it is set
    (logits None); pass ``past_key_values`` and ``use_cache`` to the model and return the
    filled cache when ``use_cache`` (else None). Set ``backend`` to the backend's name.
    """

    backend: str = ""

    def __init__(self, hf_model: torch.nn.Module, tokenizer: Any) -> None:
        if tokenizer is None:
            raise ValueError(
                "this model has no tokenizer: pass tokenizer=... (the handle needs one to "
                "encode text and align spans)"
            )
        self.model = hf_model
        self.tokenizer = tokenizer
        cfg = hf_model.config
        self.n_layers = int(cfg.num_hidden_layers)
        self.d_model = int(cfg.hidden_size)
        self.vocab_size = int(cfg.vocab_size)
        self.layers_path = decoder_layers_path(hf_model, self.n_layers)
        self._cache_kwarg, self._keep_kwarg = forward_arg_names(hf_model)
        self._fingerprint: Fingerprint | None = None
        if getattr(tokenizer, "pad_token_id", None) is None:
            eos = getattr(tokenizer, "eos_token", None)
            if eos is None:
                raise ValueError("the tokenizer has neither a pad nor an eos token: set one")
            tokenizer.pad_token = eos

    # -- identity ---------------------------------------------------------------------
    @property
    def fingerprint(self) -> Fingerprint:
        if self._fingerprint is None:
            self._fingerprint = fingerprint_of(self.model, self.n_layers, self.d_model)
        return self._fingerprint

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.fingerprint.describe()})"

    def sites(self, kind: str = "resid_post") -> list[Site]:
        """Every site of one kind in this model."""
        return [Site(layer, kind) for layer in range(self.n_layers)]  # type: ignore[arg-type]

    def check_site(self, site: Site | str) -> Site:
        return Site.parse(site).check(self.n_layers)

    def check_vector(self, v: torch.Tensor, what: str = "vector") -> None:
        if v.shape[-1] != self.d_model:
            raise ValueError(
                f"{what} has width {v.shape[-1]} but this model's d_model is {self.d_model}: "
                "use a vector fitted on this model"
            )

    # -- encoding ---------------------------------------------------------------------
    def encode(self, texts: Sequence[str], add_special_tokens: bool = True) -> dict:
        """Tokenize with left padding (the sampler and extraction share this)."""
        if isinstance(texts, str):
            texts = [texts]
        if not texts:
            raise ValueError("no texts to encode")
        tok = self.tokenizer
        old = tok.padding_side
        tok.padding_side = "left"
        try:
            enc = tok(
                list(texts),
                return_tensors="pt",
                padding=True,
                add_special_tokens=add_special_tokens,
            )
        finally:
            tok.padding_side = old
        return {
            k: v.to(self.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")
        }

    # -- the one primitive ------------------------------------------------------------
    def run(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        *,
        read: Sequence[Site | str] = (),
        index: tuple[torch.Tensor, torch.Tensor] | None = None,
        edits: Mapping[Site | str, Edit] | None = None,
        stop_early: bool = False,
        position_ids: torch.Tensor | None = None,
        past_key_values: Any = None,
        use_cache: bool = False,
        logits_to_keep: int = 0,
    ) -> RunOutput:
        """One forward pass.

        read: sites whose residual is returned in ``acts`` (after any edit at that site).
        index: ``(rows, cols)`` — return only those positions, shape (N, d_model), so memory
            grows with the positions asked for, not with sequence x layers.
        edits: site -> function applied to the residual there.
        stop_early: end the pass after the last site in ``read`` (no logits then).
        logits_to_keep: return logits for the last this-many positions only (0 = all); with a
            large vocabulary the full prefill logits can outweigh the model.
        """
        if input_ids.ndim != 2:
            raise ValueError(f"input_ids must be (batch, seq), got shape {tuple(input_ids.shape)}")
        if input_ids.shape[0] == 0 or input_ids.shape[1] == 0:
            raise ValueError("empty input: give at least one token in one row")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if position_ids is None:
            if past_key_values is not None:
                raise ValueError("with past_key_values, pass position_ids for the new tokens")
            position_ids = position_ids_from_mask(attention_mask)
        reads = as_sites(read, self.n_layers) if read else []
        edit_map = {}
        for s, f in (edits or {}).items():
            site = Site.parse(s).check(self.n_layers)
            if site in edit_map:  # e.g. "3" and Site(3): one would silently replace the other
                raise ValueError(
                    f"edits name {site} twice (as {s!r} and another key): compose the two "
                    "edits into one function for that site"
                )
            edit_map[site] = f
        if stop_early and not reads:
            raise ValueError("stop_early needs at least one site to read")
        if stop_early and (past_key_values is not None or use_cache):
            raise ValueError(
                "stop_early leaves a KV cache half-filled: read without a cache, or run the "
                "whole pass"
            )
        request = ForwardRequest(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            reads=tuple(reads),
            index=index,
            edits=MappingProxyType(edit_map),
            stop_site=max(reads, key=exec_order) if stop_early else None,
            past_key_values=past_key_values,
            use_cache=use_cache,
            logits_to_keep=logits_to_keep,
        )
        out = self._forward(request)
        if logits_to_keep and out.logits is not None and out.logits.shape[1] > logits_to_keep:
            out.logits = out.logits[:, -logits_to_keep:]  # adapters without the argument
        return out

    @abstractmethod
    def _forward(self, request: ForwardRequest) -> RunOutput:
        """Run one checked forward pass (the contract is in the class docstring)."""

    def _keep(self, logits_to_keep: int) -> dict[str, int]:
        """The model's own argument for computing only the last logits, when it has one."""
        return {self._keep_kwarg: logits_to_keep} if logits_to_keep and self._keep_kwarg else {}

    def logits(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        edits: Mapping[Site | str, Edit] | None = None,
    ) -> torch.Tensor:
        """Logits of a plain (optionally edited) forward pass."""
        with torch.no_grad():
            out = self.run(input_ids, attention_mask, edits=edits)
        assert out.logits is not None
        return out.logits


def gather(h: torch.Tensor, index) -> torch.Tensor:
    if index is None:
        return h.detach()
    rows, cols = index  # a model split across devices: index where this layer lives
    return h[rows.to(h.device), cols.to(h.device)].detach()


def require(module: str, backend: str, extra: str) -> Any:
    """Import an optional backend's package, or say which extra of rsteer installs it."""
    top = module.split(".")[0]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        if (err.name or top).split(".")[0] != top:
            raise  # the package is there but lacks something else: not ours to explain
        raise ImportError(
            f"backend={backend!r} needs {top}, which is not installed: "
            f'pip install "rsteer[{extra}]" (the dev extra installs every backend)'
        ) from err
