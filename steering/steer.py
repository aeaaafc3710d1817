"""Steer a model with fitted vectors: add (or ablate) them at chosen sites and positions.

One :class:`Steer` works in two places:

- as a controller of the one generation loop::

      from rlvr.generation.sampling import sample
      out = sample(handle, prompts, controller=Steer(vec, coef=4.0, positions="generated"))

- around plain forward passes and the model's own ``generate`` (every ``handle.run``
  and, for HF and nnsight handles, every forward of ``handle.model`` inside the block is
  steered; hooks and patches are removed in ``finally``, even when the block raises)::

      with Steer(vec, coef=4.0).applied(handle):
          logits = handle.run(**handle.encode(texts)).logits
          out = handle.model.generate(**handle.encode(texts), max_new_tokens=20)

  Greedy ``generate`` inside the block gives the same tokens as ``sample(handle, ...,
  controller=steer, temperature=0)``; what cannot be steered there (beam search with a
  decision function, ``use_cache=False``, a TransformerLens bridge's own forward)
  raises instead of running unsteered. See :meth:`Steer.applied`.

  or explicitly, without patching anything:
  ``handle.run(ids, mask, edits=steer.edits_for(ids, mask))``.

Vectors
-------
``vectors`` is any form :mod:`steering.vector_groups` reads (``{Site: tensor}``, a
``probes.SteeringVector``-like object, a list of them, or ``{label: any of those}``),
turned once into the one form Steer works with, ``label -> {Site: vector}``
(``Steer.groups``). Each label is one vector that fires as a whole, at all of its sites.

Positions
---------
Where vectors fire (``"all"``, ``"prompt"``, ``"generated"``, explicit per-prompt
indices, or a decision function per step): see :mod:`steering.positions`. With the
string and explicit options every label fires where the positions say.

Ops
---
``"add"``: ``h + coef * v``. ``"ablate"``: ``h - coef * (h . v_hat) v_hat`` (``coef=1``
removes the component along ``v``). ``coef`` is one number or a mapping label -> number;
``coef=0`` leaves the model unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from probes.sites import Site
from rlvr.generation.controllers import StepContext

from .model_hooks import ModelHooks
from .positions import Positions
from .vector_groups import as_vector_groups

__all__ = ["Steer", "OPS"]

OPS = ("add", "ablate")


class Steer:
    """Add (or ablate) vectors at sites and positions; a sampler controller and a context manager.

    See the module docstring for the accepted ``vectors`` and the ops, and
    :mod:`steering.positions` for the exact positions each ``positions`` option covers.
    Parameters are fixed at construction; a Steer holds no per-run state (what fired is
    recorded in the run's ``ctx.extra``), so one instance can serve many runs and models.
    """

    def __init__(
        self,
        vectors: Any,
        coef: float | Mapping[Hashable, float] = 1.0,
        positions: str | Sequence[Sequence[int]] | Callable[[int, StepContext], Sequence] = "all",
        op: str = "add",
        *,
        record_as: str = "fired",
    ) -> None:
        self.groups = as_vector_groups(vectors)
        widths = {v.shape[0] for g in self.groups.values() for v in g.values()}
        if len(widths) != 1:
            raise ValueError(f"steering vectors disagree on d_model: widths {sorted(widths)}")
        self.d_model = widths.pop()
        if op not in OPS:
            raise ValueError(f"unknown op {op!r}: use one of {', '.join(OPS)}")
        self.op = op
        if op == "ablate":
            for label, g in self.groups.items():
                for s, v in g.items():
                    if float(v.norm()) == 0.0:
                        raise ValueError(f"cannot ablate along the zero vector ({label!r} at {s})")
        self._coefs = self._check_coef(coef)
        self.coef = dict(coef) if isinstance(coef, Mapping) else float(coef)
        self.positions = positions
        self._where = Positions(positions, self.groups, record_as)
        self.record_as = record_as
        self.sites = sorted({s for g in self.groups.values() for s in g})
        self._cast: dict[tuple, torch.Tensor] = {}

    def __repr__(self) -> str:
        labels = ", ".join(repr(k) for k in self.groups)
        pos = self.positions if isinstance(self.positions, str) else type(self.positions).__name__
        sites = ", ".join(s.name for s in self.sites)
        return f"Steer([{labels}] at {sites}, coef={self.coef}, positions={pos}, op={self.op})"

    # -- validation ----------------------------------------------------------------------
    def _check_coef(self, coef):
        if isinstance(coef, Mapping):
            unknown = set(coef) - set(self.groups)
            if unknown:
                raise ValueError(f"coef names unknown vectors {sorted(map(repr, unknown))}")
            out = {k: float(coef.get(k, 1.0)) for k in self.groups}
        elif isinstance(coef, (int, float)) and not isinstance(coef, bool):
            out = {k: float(coef) for k in self.groups}
        else:
            raise TypeError(f"coef must be a number or a mapping label -> number, got {coef!r}")
        for k, c in out.items():
            if c != c or c in (float("inf"), float("-inf")):
                raise ValueError(f"coef for {k!r} is not finite: {c}")
        return out

    def setup(self, model: Any) -> None:
        """Validate sites and widths against a handle before anything runs (controller hook)."""
        if not (hasattr(model, "check_site") and hasattr(model, "check_vector")):
            raise TypeError(
                "steering needs a model handle (probes.wrap(model, tokenizer)) so it can "
                f"write to the residual stream; got a {type(model).__name__}"
            )
        for label, g in self.groups.items():
            for site, v in g.items():
                model.check_site(site)
                model.check_vector(v, what=f"steering vector {label!r} at {site}")

    # -- where to fire -------------------------------------------------------------------
    def _coef(self, label) -> float:
        return self._coefs[label]

    def masks(self, step: int, ctx: StepContext) -> dict[Hashable, torch.Tensor]:
        """label -> (batch, seq) bool: where each vector fires in this call (empty: nowhere)."""
        return self._where.masks(step, ctx)

    # -- the edits -----------------------------------------------------------------------
    def _vec(self, label, site: Site, like: torch.Tensor) -> torch.Tensor:
        key = (label, site, like.dtype, like.device)
        v = self._cast.get(key)
        if v is None:
            v = self.groups[label][site]
            if self.op == "ablate":
                v = v / v.norm()
            v = v.to(like.device, like.dtype)
            self._cast[key] = v
        return v

    def _edit(self, site: Site, fire: list[tuple[Hashable, torch.Tensor]]):
        def edit(h: torch.Tensor) -> torch.Tensor:
            for label, m in fire:
                if m.shape != h.shape[:2]:
                    raise RuntimeError(
                        f"steering mask {tuple(m.shape)} does not match the residual at {site} "
                        f"{tuple(h.shape[:2])}: positions and the forward pass disagree"
                    )
                v = self._vec(label, site, h)
                w = m.to(h.dtype)[..., None] * self._coef(label)
                if self.op == "add":
                    h = h + w * v
                else:
                    h = h - w * (h @ v)[..., None] * v
            return h

        return edit

    def edits(self, step: int, ctx: StepContext) -> dict[Site, Callable]:
        """Controller hook: site -> edit for this forward (empty where nothing fires)."""
        masks = self.masks(step, ctx)
        out = {}
        for site in self.sites:
            fire = [(label, m) for label, m in masks.items() if site in self.groups[label]]
            if fire:
                out[site] = self._edit(site, fire)
        return out

    def edits_for(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        prompt_lengths: Sequence[int] | torch.Tensor | None = None,
    ) -> dict[Site, Callable]:
        """Edits for one plain forward pass: ``handle.run(ids, mask, edits=steer.edits_for(ids, mask))``.

        Rows are prompts (``positions[i]`` is row i). Without ``prompt_lengths`` every
        real token counts as prompt, so ``"generated"`` steers nothing.
        """
        ctx = StepContext.for_forward(input_ids, attention_mask, position_ids, prompt_lengths)
        return self.edits(0, ctx)

    @contextmanager
    def applied(
        self, handle: Any, *, prompt_lengths: Sequence[int] | torch.Tensor | None = None
    ) -> Iterator[Any]:
        """Steer every forward of the model inside the block: ``handle.run`` and the model's own.

        ``handle.run`` (and ``handle.logits``) calls are steered with the caller's edits kept
        and applied before the steering at the same site. For a HF or nnsight handle the
        Hugging Face model's own forward is steered too, through torch hooks on its decoder
        layers, so ``handle.model.generate(...)`` and ``handle.model(...)`` inside the block
        are steered with the positions semantics of :func:`rlvr.generation.sampling.sample`:

        - a forward with an empty (or no) KV cache starts a sequence: its real tokens are
          the prompt (``prompt_lengths``, when given, marks the rest as generated), and under
          ``generate`` the next forwards with that cache are steps 1, 2, ...;
        - positions are ``cumsum(attention_mask) - 1`` (left padding skipped) whatever
          position ids the model is given;
        - explicit positions index prompts: under ``generate`` with ``num_return_sequences``
          or ``num_beams`` each prompt's rows share its list;
        - a decision function sees ``ctx.generated`` and ``ctx.extra`` per row, but what
          fired is not returned (use ``sample`` for that), ``ctx.done`` is always False,
          and beam search or assisted decoding (rows reordered or tokens rolled back) is
          refused.

        ``generate(use_cache=False)`` is refused (without a cache each step re-reads the
        whole sequence and the prompt cannot be told from the generated tokens), as is a
        cache filled before the block. A TransformerLens bridge's own forward is not
        steered: calling it inside the block raises; use ``handle.run`` or ``sample``.
        Sites and widths are checked first; every patch and hook is removed in
        ``finally``; blocks nest.
        """
        self.setup(handle)
        state = ModelHooks(self, handle, prompt_lengths)
        missing = object()
        before = handle.__dict__.get("run", missing)
        inner = handle.run

        def run(input_ids, attention_mask=None, **kw):
            ctx = StepContext.for_forward(
                input_ids, attention_mask, kw.get("position_ids"), prompt_lengths
            )
            mine = self.edits(0, ctx)
            given = {Site.parse(s): f for s, f in (kw.pop("edits", None) or {}).items()}
            for site, f in mine.items():
                g = given.get(site)
                given[site] = f if g is None else (lambda h, f=f, g=g: f(g(h)))
            state.inside_run += 1  # the model's own hooks stand aside: steered once
            try:
                return inner(input_ids, attention_mask, edits=given or None, **kw)
            finally:
                state.inside_run -= 1

        handle.run = run
        try:
            state.install()
            yield handle
        finally:
            state.remove()
            if before is missing:
                del handle.run
            else:
                handle.run = before
