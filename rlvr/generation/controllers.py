"""The loop's controller protocol: what a controller may do at each step, and what it sees.

A controller is any object with some of these hooks (missing ones are no-ops); pass one,
or a list that is applied in order, to :func:`rlvr.generation.sampling.sample`. Per step they run in
this order:

``setup(model)``
    Once, before anything runs, with the model/handle given to ``sample``: validate sites
    and vector widths here and raise early.
``before(step, ctx)``
    Act before the forward (step 0 = the prefill, step ``t >= 1`` = one new token per
    row): e.g. run a second model on ``ctx.input_ids`` and decide something.
``reads(step, ctx) -> Mapping[site, fn(h) -> None] | None``
    Read the residual at a site during this forward (``h`` of shape ``(batch,
    seq_of_this_call, d_model)``, aligned with ``ctx.input_ids``/``ctx.position_ids``);
    a read sees the stream before any edit at the same site.
``edits(step, ctx) -> Mapping[site, fn(h) -> h'] | None``
    Edit the residual at a site for this forward only. Several controllers' edits at one
    site are composed in list order. Sites run in the model's execution order, so an
    edit at a later site can use what a read at an earlier one saw.
``select(step, logits, proposed, ctx) -> tokens | None``
    After the forward, with the last position's logits ``(batch, vocab)`` and the sampled
    tokens ``(batch,)``: may return replacement tokens (a tensor or a list with ``None``
    for "keep"), e.g. a token emitted by another model.
``after(step, ctx)``
    Observe, after the step's tokens are appended and ``ctx.done`` is updated (the
    ``callback=`` argument of ``sample`` is one more ``after``).

``ctx`` is a :class:`StepContext`: the rows of the running batch with their
``prompt_index``/``sample_index``, this call's ``input_ids``/``position_ids``, the full
``attention_mask`` (cache + this call), the tokens generated so far, ``done``, and
``extra`` — one dict per row that ends up in ``Samples.extra`` (how a controller records
per-row information, e.g. which vector fired when). An edit knows exactly which (row,
absolute position) entries it touches from ``ctx.position_ids`` and ``ctx.valid``; that is
what keeps position-targeted steering right under KV caching and left padding.

:class:`Controllers` is how the loop calls a list of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .forward import position_ids_from_mask

__all__ = ["Controllers", "StepContext"]


@dataclass
class StepContext:
    """What a controller sees at one step of one batch (rows of the running batch).

    ``input_ids``/``position_ids``: this forward's tokens and absolute positions,
    ``(batch, seq_of_this_call)``; ``attention_mask``: ``(batch, cached + this call)``;
    ``prompt_lengths``: real prompt tokens per row; ``generated``: tokens generated so
    far ``(batch, t)`` (padding after a row is done); ``done``: rows already finished
    before this step (they are only padding now); ``logits``/``tokens``: this step's
    last-position logits and chosen tokens, set once known; ``stepped``: rows that
    generated a real token at this step (set with ``tokens``; in the callback ``done``
    already includes rows that finished at this step).
    """

    step: int
    input_ids: torch.Tensor
    position_ids: torch.Tensor
    attention_mask: torch.Tensor
    prompt_lengths: torch.Tensor
    generated: torch.Tensor
    done: torch.Tensor
    prompt_index: torch.Tensor
    sample_index: torch.Tensor
    extra: list[dict[str, Any]]
    logits: torch.Tensor | None = None
    tokens: torch.Tensor | None = None
    stepped: torch.Tensor | None = None

    @property
    def batch_size(self) -> int:
        return int(self.input_ids.shape[0])

    @property
    def valid(self) -> torch.Tensor:
        """(batch, seq) — real tokens of live rows in this call (not padding, not done)."""
        s = self.input_ids.shape[1]
        return self.attention_mask[:, -s:].bool() & ~self.done[:, None]

    @property
    def is_prompt(self) -> torch.Tensor:
        """(batch, seq) — valid entries at prompt positions ``0 .. L-1``."""
        return self.valid & (self.position_ids < self.prompt_lengths[:, None])

    @property
    def is_generated(self) -> torch.Tensor:
        """(batch, seq) — valid entries at generated-token positions ``>= L``."""
        return self.valid & (self.position_ids >= self.prompt_lengths[:, None])

    @property
    def deciding_position(self) -> torch.Tensor:
        """(batch,) — the absolute position whose logits choose this step's token."""
        return self.position_ids[:, -1]

    @classmethod
    def for_forward(
        cls,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        prompt_lengths: torch.Tensor | Sequence[int] | None = None,
    ) -> StepContext:
        """A context for one plain (left-padded) forward pass, rows = prompts.

        ``attention_mask`` may cover cached tokens too; ``position_ids`` default to
        ``cumsum(mask) - 1`` over it. ``prompt_lengths`` (default: every real token is
        prompt) marks positions ``>= L`` as generated, e.g. to score completions.
        """
        if input_ids.ndim != 2:
            raise ValueError(f"input_ids must be (batch, seq), got {tuple(input_ids.shape)}")
        b, s = input_ids.shape
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if position_ids is None:
            position_ids = position_ids_from_mask(attention_mask)[:, -s:]
        if prompt_lengths is None:
            lengths = attention_mask.long().sum(-1)
        else:
            lengths = torch.as_tensor(prompt_lengths, dtype=torch.long, device=input_ids.device)
            if lengths.shape != (b,):
                raise ValueError(f"prompt_lengths needs one entry per row ({b})")
        dev = input_ids.device
        return cls(
            step=0,
            input_ids=input_ids,
            position_ids=position_ids,
            attention_mask=attention_mask,
            prompt_lengths=lengths,
            generated=torch.zeros(b, 0, dtype=torch.long, device=dev),
            done=torch.zeros(b, dtype=torch.bool, device=dev),
            prompt_index=torch.arange(b, device=dev),
            sample_index=torch.zeros(b, dtype=torch.long, device=dev),
            extra=[{} for _ in range(b)],
        )


HOOKS = ("setup", "before", "reads", "edits", "select", "after")


def _is_controller(obj: Any) -> bool:
    return any(callable(getattr(obj, h, None)) for h in HOOKS)


class Controllers:
    """One controller or a list of them (``None`` entries dropped), called hook by hook."""

    def __init__(self, controller: Any) -> None:
        if controller is None:
            items: list[Any] = []
        elif _is_controller(controller):
            items = [controller]
        elif isinstance(controller, Iterable) and not isinstance(controller, (str, bytes)):
            items = [c for c in controller if c is not None]
        else:
            items = [controller]
        for c in items:
            if not _is_controller(c):
                raise TypeError(
                    f"a controller needs at least one of the hooks {', '.join(HOOKS)}; a "
                    f"{type(c).__name__} has none (a misspelt hook is ignored otherwise)"
                )
        self.items = items

    def setup(self, model: Any) -> None:
        for c in self.items:
            if hasattr(c, "setup"):
                c.setup(model)

    def before(self, step: int, ctx: StepContext) -> None:
        for c in self.items:
            if hasattr(c, "before"):
                c.before(step, ctx)

    def edits(self, step: int, ctx: StepContext) -> dict:
        """Every controller's reads, then every controller's edits, one function per site."""
        merged: dict = {}
        for hook in ("reads", "edits"):
            for c in self.items:
                fn = getattr(c, hook, None)
                got = fn(step, ctx) if fn is not None else None
                for site, f in (got or {}).items():
                    if f is None:
                        continue
                    edit = _reader(f) if hook == "reads" else f
                    merged[site] = _compose(merged[site], edit) if site in merged else edit
        return merged

    def select(
        self, step: int, logits: torch.Tensor, tokens: torch.Tensor, ctx: StepContext
    ) -> torch.Tensor:
        """The tokens after every controller's ``select``, in list order."""
        for c in self.items:
            fn = getattr(c, "select", None)
            sel = fn(step, logits, tokens, ctx) if fn is not None else None
            if sel is not None:
                tokens = _as_tokens(sel, tokens)
        return tokens

    def after(self, step: int, ctx: StepContext) -> None:
        for c in self.items:
            if hasattr(c, "after"):
                c.after(step, ctx)


def _compose(f, g):
    return lambda h: g(f(h))


def _reader(read):
    def edit(h):
        read(h)
        return h

    return edit


def _as_tokens(sel, proposed: torch.Tensor) -> torch.Tensor:
    if isinstance(sel, torch.Tensor):
        out = sel.to(proposed.device, torch.long).reshape(-1)
        if out.shape != proposed.shape:
            raise ValueError(f"select returned {tuple(out.shape)} tokens for {len(proposed)} rows")
        return out
    sel = list(sel)
    if len(sel) != len(proposed):
        raise ValueError(f"select returned {len(sel)} tokens for {len(proposed)} rows")
    out = proposed.clone()
    for i, t in enumerate(sel):
        if t is not None:
            out[i] = int(t)
    return out
