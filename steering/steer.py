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
A row's prompt of ``L`` real tokens sits at absolute positions ``0 .. L-1`` and its
``t``-th generated token at ``L + t``, whatever the padding (the loop's position ids skip
left padding). The residual at position ``p`` produces the logits for token ``p + 1``.

- ``"all"`` — every real position, prompt and generated; padding never.
- ``"prompt"`` — prompt positions ``0 .. L-1`` (only the prefill touches them). Position
  ``L-1`` predicts the first generated token, so that token is steered directly; later
  tokens only through attention to the steered prompt.
- ``"generated"`` — generated-token positions ``L, L+1, ...``. The first generated token
  is predicted at ``L-1`` and is therefore *not* steered; token ``t >= 1`` is.
- explicit indices, a list with one list of absolute positions per prompt
  (``positions[i]`` applies to every sample of prompt ``i``; in a plain forward pass,
  row ``i`` of the batch).
- a decision function ``fn(step, ctx) -> list[label | True | None]``, one entry per row
  of ``ctx`` (a :class:`rlvr.generation.controllers.StepContext`): at step ``t`` it decides whether
  (and which labelled vector) fires at the position that predicts generated token ``t``
  — ``L + t - 1``, the last position of the call. ``None``/``False`` = no vector;
  ``True`` = the only vector. What fired is recorded in ``ctx.extra[row][record_as]`` as
  ``(step, position, label)``, and re-applied at that position if the same sequence is
  recomputed without a cache, so cached and uncached decoding agree.

With the string and explicit options every label fires where the positions say.

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
from .vector_groups import as_vector_groups

__all__ = ["Steer", "POSITIONS", "OPS"]

POSITIONS = ("all", "prompt", "generated")
OPS = ("add", "ablate")
_NO = object()


class Steer:
    """Add (or ablate) vectors at sites and positions; a sampler controller and a context manager.

    See the module docstring for the accepted ``vectors``, the exact positions each
    ``positions`` option covers, and the ops. Parameters are fixed at construction; a
    Steer holds no per-run state (what fired is recorded in the run's ``ctx.extra``), so
    one instance can serve many runs and models.
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
        self._table: torch.Tensor | None = None
        if isinstance(positions, str):
            if positions not in POSITIONS:
                raise ValueError(
                    f"unknown positions {positions!r}: use one of {', '.join(POSITIONS)}, "
                    "a list of per-prompt position lists, or a decision function"
                )
        elif callable(positions):
            pass
        elif isinstance(positions, (list, tuple)):
            self._table = self._index_table(positions)
        else:
            raise TypeError(
                f"positions must be a string, per-prompt index lists or a function, "
                f"got a {type(positions).__name__}"
            )
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

    @staticmethod
    def _index_table(positions) -> torch.Tensor:
        rows = []
        for i, r in enumerate(positions):
            if isinstance(r, (str, bytes)) or not isinstance(r, (Sequence, torch.Tensor)):
                raise TypeError(f"positions[{i}] must be a list of ints, got {r!r}")
            idx = [int(p) for p in (r.tolist() if isinstance(r, torch.Tensor) else r)]
            if any(p < 0 for p in idx):
                raise ValueError(f"positions[{i}] has a negative index: positions are absolute")
            rows.append(idx)
        width = max((max(r) for r in rows if r), default=-1) + 1
        table = torch.zeros(len(rows), max(width, 1), dtype=torch.bool)
        for i, r in enumerate(rows):
            table[i, r] = True
        return table

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

    def _resolve(self, decision) -> Any:
        if decision is None or decision is False:
            return _NO
        if decision is True:
            if len(self.groups) != 1:
                raise ValueError(
                    f"the decision function returned True but there are {len(self.groups)} "
                    f"vectors {list(self.groups)}: return the label to fire"
                )
            return next(iter(self.groups))
        if isinstance(decision, Hashable) and decision in self.groups:
            return decision
        raise ValueError(
            f"the decision function returned {decision!r}: use None, True, or one of "
            f"{list(self.groups)}"
        )

    def _decided(self, step: int, ctx: StepContext) -> dict[Hashable, torch.Tensor]:
        b, s = ctx.input_ids.shape
        got = self.positions(step, ctx)  # type: ignore[operator]
        if isinstance(got, torch.Tensor):
            got = got.tolist()
        got = list(got)
        if len(got) != b:
            raise ValueError(f"the decision function returned {len(got)} entries for {b} rows")
        done = ctx.done.tolist()
        last = ctx.position_ids[:, -1].tolist()
        for r in range(b):
            label = self._resolve(got[r])
            if label is not _NO and not done[r]:
                ctx.extra[r].setdefault(self.record_as, []).append((step, last[r], label))
        # Apply every recorded firing whose position is in this call (one per row when
        # cached; the whole history when the sequence is recomputed).
        valid = ctx.valid
        hits: dict[Hashable, list[tuple[int, int]]] = {}
        for r in range(b):
            if done[r]:
                continue
            for _, pos, label in reversed(ctx.extra[r].get(self.record_as, ())):
                if pos < last[r] - s + 1:
                    break
                if pos > last[r]:
                    continue
                c = s - 1 - (last[r] - pos)
                if int(ctx.position_ids[r, c]) != pos or not bool(valid[r, c]):
                    where = ((ctx.position_ids[r] == pos) & valid[r]).nonzero()
                    if len(where) == 0:
                        continue
                    c = int(where[0, 0])
                hits.setdefault(label, []).append((r, c))
        out = {}
        for label, rc in hits.items():
            m = torch.zeros(b, s, dtype=torch.bool, device=ctx.input_ids.device)
            rr, cc = zip(*rc)
            m[list(rr), list(cc)] = True
            out[label] = m
        return out

    def masks(self, step: int, ctx: StepContext) -> dict[Hashable, torch.Tensor]:
        """label -> (batch, seq) bool: where each vector fires in this call (empty: nowhere)."""
        pos = self.positions
        if callable(pos):
            return self._decided(step, ctx)
        if self._table is not None:
            table = self._on_device(ctx.input_ids.device)
            if int(ctx.prompt_index.max()) >= table.shape[0]:
                raise ValueError(
                    f"positions has index lists for {table.shape[0]} prompts but row(s) "
                    f"belong to prompt {int(ctx.prompt_index.max())}: give one list per prompt"
                )
            p = ctx.position_ids
            inside = p < table.shape[1]
            m = (
                ctx.valid
                & inside
                & table[ctx.prompt_index[:, None], p.clamp(max=table.shape[1] - 1)]
            )
        elif pos == "all":
            m = ctx.valid
        elif pos == "prompt":
            m = ctx.is_prompt
        else:
            m = ctx.is_generated
        if not bool(m.any()):
            return {}
        return {label: m for label in self.groups}

    def _on_device(self, device: torch.device) -> torch.Tensor:
        assert self._table is not None
        key = ("table", device)
        if key not in self._cast:
            self._cast[key] = self._table.to(device)
        return self._cast[key]

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
