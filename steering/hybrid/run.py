"""One :meth:`HybridDecoder.generate` call: a controller of :func:`rlvr.generation.sampling.sample`.

Per step, in the loop's hook order:

``before``  the router model (if any) runs its own forward on exactly the tokens the base
            is about to consume, through its own KV cache (which follows the loop's batch
            as finished rows are dropped); a router without a site decides now.
``reads``   a router with a ``site`` (a probe on the base) reads the base's residual there
            during the base's forward and decides.
``edits``   steer mode: the fired label's vector is added at the deciding position (the
            edit reads the decision when the forward reaches the steering site).
``select``  handoff mode: fired rows get the token of the emission rule; an exclusive
            schedule redraws base tokens that would begin a scheduled label unfired;
            events and the per-step records for router quality are written.
``after``   the rows' texts get the new tokens.
"""

from __future__ import annotations

from typing import Any

import torch

from rlvr.generation.controllers import StepContext
from rlvr.generation.draws import choose_tokens, row_keys, step_uniform
from rlvr.generation.forward import cache_kind, new_cache
from rlvr.generation.sampling_params import SamplingParams

from ..steer import Steer
from .records import LOG_KEY, STEER_KEY, STEPS_KEY, UNAVOIDABLE_KEY, HybridEvent
from .texts import RowTexts

_M32 = 0xFFFFFFFF
NEGLIGIBLE = 1e-6  # tokens below this share of the top token's probability: a fallback


def _keys(ctx: StepContext) -> list[tuple[int, int]]:
    return list(zip(ctx.prompt_index.tolist(), ctx.sample_index.tolist()))


class _Uniforms:
    """The loop's uniform numbers of one step, per row (indexable like the tensor), drawn
    only if a row needs one (an emission or a redraw; most steps need none)."""

    __slots__ = ("_ctx", "_seed", "_step", "_u")

    def __init__(self, seed: int, step: int, ctx: StepContext) -> None:
        self._seed, self._step, self._ctx, self._u = seed, step, ctx, None

    def __getitem__(self, idx):
        if self._u is None:
            keys = row_keys(self._seed, self._ctx.prompt_index, self._ctx.sample_index)
            self._u = step_uniform(keys, self._step)
        return self._u[idx]


class TokenModel:
    """The router model in a run: its own KV cache, fed the tokens the base consumes."""

    def __init__(self, handle: Any, use_cache: bool | str, max_new_tokens: int) -> None:
        self.handle = handle
        self.requested = use_cache
        self.use_cache = cache_kind(use_cache, handle) is not None
        self.max_new_tokens = max_new_tokens
        self.device = next(handle.model.parameters()).device
        self.cache = None
        self.rows: list[tuple[int, int]] = []
        self.logits: torch.Tensor | None = None

    def step(self, step: int, ctx: StepContext, rows: list[tuple[int, int]]) -> None:
        if step == 0:
            self.cache = None
            if self.use_cache:  # the loop's rule for this batch's length, for this model
                size = ctx.input_ids.shape[1] + self.max_new_tokens
                kind = cache_kind(self.requested, self.handle, size)
                self.cache = new_cache(self.handle.model, size if kind == "static" else None)
        elif self.use_cache and rows != self.rows:
            where = {k: i for i, k in enumerate(self.rows)}
            keep = torch.tensor([where[k] for k in rows], device=self.device)
            self.cache.batch_select_indices(keep)
        self.rows = rows
        out = self.handle.run(
            ctx.input_ids.to(self.device),
            ctx.attention_mask.to(self.device),
            position_ids=ctx.position_ids.to(self.device),
            past_key_values=self.cache,
            use_cache=self.use_cache,
            logits_to_keep=1,
        )
        if self.use_cache and out.past_key_values is not None:
            self.cache = out.past_key_values
        self.logits = out.logits[:, -1, :].float().to(ctx.input_ids.device)

    def logits_like(self, base_logits: torch.Tensor) -> torch.Tensor:
        """Router logits over the base's vocabulary width (extra rows cut, missing ones -inf)."""
        assert self.logits is not None
        v_b, v_r = base_logits.shape[-1], self.logits.shape[-1]
        if v_r == v_b:
            return self.logits
        if v_r > v_b:
            return self.logits[:, :v_b]
        pad = self.logits.new_full((self.logits.shape[0], v_b - v_r), float("-inf"))
        return torch.cat([self.logits, pad], dim=-1)


class StepView:
    """What a router sees at one step (implements ``routers.RouterView``)."""

    def __init__(
        self, run: HybridRun, step: int, ctx: StepContext, keys: list[tuple[int, int]]
    ) -> None:
        self._run, self.step, self._ctx = run, step, ctx
        self.keys = keys
        self.live = (~ctx.done).tolist()
        tm = run.token_model
        self.logits = tm.logits if tm is not None else None
        self.hidden: torch.Tensor | None = None

    def prefix(self, row: int) -> str:
        return self._run.texts.prefix(self.keys[row])

    def next_text(self, row: int, token: int) -> str:
        return self._run.texts.next_text(self.keys[row], int(token))

    def next_texts(self, row: int, tokens: list[int]) -> list[str]:
        """:meth:`next_text` of each of ``tokens`` (ints)."""
        return self._run.texts.next_texts(self.keys[row], tokens)

    def uniform(self, salt: int) -> torch.Tensor:
        ctx = self._ctx
        keys = row_keys(self._run.seed, ctx.prompt_index, ctx.sample_index)
        return step_uniform(keys ^ ((int(salt) * 0x9E3779B1 + 0x5BD1E995) & _M32), self.step)


class HybridRun:
    """Per-call state of the hybrid decoder (see the module docs)."""

    def __init__(self, dec: Any, params: SamplingParams, *, use_cache: bool | str):
        self.dec = dec
        self.router = dec.router
        # the loop's draws, for the router model's tokens and the exclusive redraws
        self.temperature, self.top_p, self.seed = params.temperature, params.top_p, params.seed
        self.site = getattr(self.router, "site", None)
        model = getattr(self.router, "model", None)
        self.token_model = (
            TokenModel(model, use_cache, params.max_new_tokens) if model is not None else None
        )
        self.texts = RowTexts(dec.base.tokenizer)
        self.task = dec.task
        self.steer = (
            Steer(dec.vectors, coef=dec.coef, positions=self._steer_decisions, record_as=STEER_KEY)
            if dec.action == "steer"
            else None
        )
        self.view: StepView | None = None
        self.decision: list | None = None
        self._steer_edits: dict | None = None

    # -- hooks ---------------------------------------------------------------------------
    def setup(self, model: Any) -> None:
        if self.steer is not None:
            self.steer.setup(model)

    def before(self, step: int, ctx: StepContext) -> None:
        keys = _keys(ctx)  # the running rows: the same for every hook of this step
        if step == 0:
            ids, mask = ctx.input_ids.tolist(), ctx.attention_mask.bool().tolist()
            prompts = [[t for t, keep in zip(r, m) if keep] for r, m in zip(ids, mask)]
            self.texts.start(keys, prompts)
        self.texts.new_step()
        if self.token_model is not None:
            self.token_model.step(step, ctx, keys)
        self.view = StepView(self, step, ctx, keys)
        self.decision = self._steer_edits = None
        if self.site is None:
            self._decide()

    def reads(self, step: int, ctx: StepContext) -> dict:
        return {self.site: self._read} if self.site is not None else {}

    def edits(self, step: int, ctx: StepContext) -> dict:
        if self.steer is None:
            return {}
        return {s: self._lazy_steer(s, step, ctx) for s in self.steer.sites}

    def select(self, step: int, logits: torch.Tensor, proposed: torch.Tensor, ctx: StepContext):
        if self.decision is None:
            raise RuntimeError(
                f"the router reading {self.site} did not see its site in this forward pass: "
                "the model handle ran no hook there"
            )
        dec, view, decision = self.dec, self.view, self.decision
        if getattr(self.router, "unless_base", False):
            decision = self._unless_base(decision, logits)
        u = _Uniforms(self.seed, step, ctx)
        tokens = proposed.clone()
        fired = [r for r, d in enumerate(decision) if d is not None and view.live[r]]
        if fired and dec.action == "handoff":
            emitted = self._emit(fired, decision, logits, u)
            for r, tok in zip(fired, emitted):
                if tok is not None:
                    tokens[r] = tok
            # a firing with no token to hand over changed nothing: the base's token stands,
            # checked by the exclusive rule like any other, and no event is logged
            fired = [r for r, tok in zip(fired, emitted) if tok is not None]
        elif fired and dec.action == "rerank":
            idx = torch.tensor(fired, device=logits.device)
            k = min(dec.rerank_k, logits.shape[-1])
            top = logits[idx].topk(k, dim=-1).indices
            score = self.token_model.logits_like(logits)[idx].gather(1, top)
            tokens[idx] = top.gather(1, score.argmax(-1, keepdim=True)).squeeze(1)
        if dec.exclusive:
            keep = set(fired) if dec.action != "steer" else set()
            self._exclude(tokens, decision, logits, u, keep, ctx)
        if fired:
            pos = ctx.position_ids[:, -1].tolist()
            toks = tokens.tolist()
            for r in fired:
                ev = HybridEvent(step, pos[r], decision[r], dec.action, toks[r])
                ctx.extra[r].setdefault(LOG_KEY, []).append(ev)
        if self.task is not None:
            self._record(ctx, decision)
        changed = dec.action != "steer" or dec.exclusive
        return tokens if changed else None

    def after(self, step: int, ctx: StepContext) -> None:
        for key, tok, ok in zip(self.view.keys, ctx.tokens.tolist(), ctx.stepped.tolist()):
            if ok:
                self.texts.append(key, tok)

    # -- deciding ------------------------------------------------------------------------
    def _decide(self) -> None:
        view = self.view
        got = list(self.router.decide(view))
        if len(got) != len(view.live):
            raise ValueError(
                f"{type(self.router).__name__}.decide returned {len(got)} entries for "
                f"{len(view.live)} rows: return one label or None per row"
            )
        allowed = self.dec.labels
        self.decision = [
            d if ok and d is not None and (allowed is None or d in allowed) else None
            for d, ok in zip(got, view.live)
        ]

    def _read(self, h: torch.Tensor) -> None:
        if self.decision is None:
            self.view.hidden = h[:, -1, :]
            self._decide()

    def _unless_base(self, decision: list, logits: torch.Tensor) -> list:
        """Drop firings whose label the base's own most likely token would begin anyway."""
        top = logits.argmax(-1).tolist()
        seg = self.dec.segment_start
        view = self.view
        return [
            None if d is not None and seg(view.prefix(r), view.next_text(r, t)) == d else d
            for r, (d, t) in enumerate(zip(decision, top))
        ]

    # -- emitting ------------------------------------------------------------------------
    def _emit(self, fired: list[int], decision: list, logits: torch.Tensor, u: _Uniforms):
        rule = self.dec.emit
        idx = torch.tensor(fired, device=logits.device)
        if rule == "sample":
            rl = self.token_model.logits_like(logits)[idx]
            return choose_tokens(rl, self.temperature, self.top_p, u[idx]).tolist()
        if rule == "argmax":
            return self.token_model.logits_like(logits)[idx].argmax(-1).tolist()
        # "label": the base's own choice among the tokens that begin the fired label
        out: list[int | None] = []
        for r in fired:
            want = decision[r]
            out.append(self._redraw(r, logits, u, lambda lab, want=want: lab == want))
        return out

    def _redraw(self, r: int, logits: torch.Tensor, u: _Uniforms, accept) -> int | None:
        """The base's token for row ``r`` among its ``label_top_k`` most likely tokens whose
        label (per ``segment_start``) passes ``accept``: the base's distribution
        renormalised over them, drawn with the loop's uniform (greedy: the most likely of
        them). Tokens below ``NEGLIGIBLE`` of the top token's probability are considered only
        when no likelier token passes. None when none of them passes."""
        seg, view = self.dec.segment_start, self.view
        prefix = view.prefix(r)
        row = logits[r : r + 1]
        p, top = torch.softmax(row[0], -1).topk(min(self.dec.label_top_k, row.shape[-1]))
        top, likely = top.tolist(), int((p >= p[0] * NEGLIGIBLE).sum())
        # the likely tokens first; the rest of the top-k only when none of them passes
        head = top[:likely]
        ok = [t for t, x in zip(head, view.next_texts(r, head)) if accept(seg(prefix, x))]
        if not ok:
            rest = top[likely:]
            ok = [t for t, x in zip(rest, view.next_texts(r, rest)) if accept(seg(prefix, x))]
        if not ok:
            return None
        allowed = torch.zeros_like(row, dtype=torch.bool)
        allowed[0, ok] = True
        return int(choose_tokens(row, self.temperature, self.top_p, u[r : r + 1], allowed))

    def _exclude(self, tokens, decision, logits, u, keep: set[int], ctx: StepContext) -> None:
        """Redraw base tokens that would begin a scheduled label the router did not fire."""
        scheduled = self.dec.labels
        seg, view = self.dec.segment_start, self.view
        for r, ok in enumerate(view.live):
            if not ok or r in keep:
                continue

            def fine(lab, d=decision[r]):
                return lab is None or lab not in scheduled or lab == d

            if fine(seg(view.prefix(r), view.next_text(r, int(tokens[r])))):
                continue  # the usual case: the base's own token stands
            t = self._redraw(r, logits, u, fine)
            if t is None:  # every likely token begins an unscheduled label: the base's stands
                extra = ctx.extra[r]
                extra[UNAVOIDABLE_KEY] = extra.get(UNAVOIDABLE_KEY, 0) + 1
                continue
            tokens[r] = t

    # -- steering ------------------------------------------------------------------------
    def _steer_decisions(self, step: int, ctx: StepContext) -> list:
        return self.decision

    def _lazy_steer(self, site, step: int, ctx: StepContext):
        def edit(h: torch.Tensor) -> torch.Tensor:
            if self.decision is None:
                raise RuntimeError(
                    f"the steering site {site} ran before the router decided: read at or "
                    "before the steering site"
                )
            if self._steer_edits is None:
                self._steer_edits = self.steer.edits(step, ctx)
            fn = self._steer_edits.get(site)
            return fn(h) if fn is not None else h

        return edit

    # -- per-step records for router quality ----------------------------------------------
    def _record(self, ctx: StepContext, decision: list) -> None:
        """Per live row: (step, ground truth, fired, {eligible label: router score})."""
        task, view = self.task, self.view
        schedule = getattr(task, "schedule", None)
        watch = self.dec.labels
        scorer = getattr(self.router, "scores", None)
        per_row: list[tuple[Any, frozenset]] = []
        for r, ok in enumerate(view.live):
            if not ok:
                per_row.append((None, frozenset()))
                continue
            prefix = view.prefix(r)
            can = frozenset(x for x in task.can_begin(prefix) if watch is None or x in watch)
            gt = schedule(prefix) if callable(schedule) else None
            per_row.append((gt, can))
        scores = scorer(view) if scorer is not None and any(c for _, c in per_row) else None
        for r, (gt, can) in enumerate(per_row):
            if not view.live[r]:
                continue
            labs = sorted(can, key=str)  # a set's order changes with the hash seed
            if scores is not None:
                s = {lab: float(scores[r].get(lab, 0.0)) for lab in labs}
            else:
                s = {lab: float(decision[r] == lab) for lab in labs}
            ctx.extra[r].setdefault(STEPS_KEY, []).append((view.step, gt, decision[r], s))
