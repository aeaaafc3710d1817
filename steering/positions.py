"""Where a :class:`steering.Steer` fires: the ``positions`` it is given, turned into masks.

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
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import torch

from rlvr.generation.controllers import StepContext

__all__ = ["POSITIONS", "Positions"]

POSITIONS = ("all", "prompt", "generated")
_NO = object()


class Positions:
    """Where each labelled vector of a :class:`steering.Steer` fires, call by call.

    ``positions`` is one of :data:`POSITIONS`, per-prompt lists of absolute positions, or a
    decision function (see the module docstring); ``groups`` is the Steer's ``label ->
    {Site: vector}`` (only its labels are read); what a decision function fires is recorded
    in ``ctx.extra[row][record_as]``.
    """

    def __init__(
        self,
        positions: str | Sequence[Sequence[int]] | Callable[[int, StepContext], Sequence],
        groups: Mapping[Hashable, Any],
        record_as: str,
    ) -> None:
        self.groups = groups
        self.record_as = record_as
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
        self._cast: dict[tuple, torch.Tensor] = {}

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
