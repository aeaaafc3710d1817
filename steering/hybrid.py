"""The hybrid decoder: the base model writes every token, a router decides when to intervene.

This measures "scheduling alone": the base model already knows *how* to run a strategy
(its own strategy vectors, fitted on its own activations); the router supplies only *when*
(and which). Per step and per row the router returns a label or nothing, and the decoder
acts on it:

- ``mode="steer"`` — add ``coef * v[label]`` (the base model's vector) at the position
  whose logits choose this step's token; the base then writes the token.
- ``mode="handoff"`` — that single token is emitted by the router's token model (the RL
  model), sampled from its logits with the *same* uniform draw the loop would have used;
  every other token is the base's. The upper bound of what scheduling alone can do.

Both act at the first generated token too (decided at the last prompt position).

Controls (each a flag; combine with either mode unless noted):

- ``random_firing`` — replace the router by a :class:`~steering.routers.RandomRouter`
  firing at the real router's measured rate with its measured label shares (measured by
  running the real router first, unless ``firing_rate``/``label_shares`` are given);
- ``random_vectors`` — every vector replaced by a random direction with the same norm at
  each site (seeded by ``control_seed``); steer mode only;
- ``bias_only`` — every label fires the same vector, the mean of the labels' vectors at
  each site; steer mode only;
- ``rerank`` — when the router fires, pick among the base model's *unsteered* top-``k``
  tokens the one the router's token model scores highest; no vector is added. This
  separates token selection from activation steering.

How it runs
-----------
There is one generation loop, :func:`rlvr.sampling.sample`; the hybrid is a controller on
it. At each step, in ``edits`` (before the base forward), a model router runs *its own*
forward on exactly the tokens the base is about to consume (``ctx.input_ids``, same
attention mask and position ids) through its own KV cache, which follows the loop's
batch as finished rows are dropped; so a step costs one base step plus one router step.
The decision then turns into a per-step decision function of :class:`steering.Steer`
(steer mode) or into a replacement token in ``select`` (handoff / re-rank). A probe router
decides inside the base forward itself, in a hook at its site, before the steering sites
are reached. Only ``ModelRouter(unless_base=True)`` in steer mode needs the base's
unsteered logits before the steered forward: the base handle the loop drives is wrapped
so that it can *peek* (run the new token unsteered through the loop's KV cache, crop the
cache back, then run the steered forward) — on steps where some row has a candidate.

``use_cache=False`` re-runs both models on the whole prefix every token (the slow
reference the cached decoder is tested and benchmarked against).

Output: :class:`HybridResult` — per generation the text, a per-token log of
:class:`HybridEvent` ``(step, position, label, mode, token)`` and the steered-token
fraction; plus the underlying :class:`rlvr.sampling.Samples`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch

import probes
from probes.sites import Site, exec_order

# ``choose_tokens``/``row_keys`` are the loop's own draw: the handoff token uses the uniform the
# loop would have used, so a handoff hybrid that fires at every token *is* sampling from
# the router with that seed.
from rlvr.sampling import (
    Samples,
    StepContext,
    choose_tokens,
    new_cache,
    row_keys,
    sample,
    step_uniform,
)

from .routers import ModelRouter, ProbeRouter, RandomRouter, check_same_tokenizer
from .steer import Steer

__all__ = [
    "MODES",
    "HybridDecoder",
    "HybridEvent",
    "HybridGeneration",
    "HybridResult",
    "bias_only_vectors",
    "random_vectors_like",
]

MODES = ("steer", "handoff")
LOG_KEY = "hybrid"
STEER_KEY = "hybrid_steer"
_M32 = 0xFFFFFFFF

Router = ModelRouter | ProbeRouter | RandomRouter


# -- records ---------------------------------------------------------------------------


class HybridEvent(NamedTuple):
    """One intervention: at generated token ``step`` (0-based), decided at absolute
    ``position`` (= prompt length + step - 1, whose logits chose the token), ``label``
    fired with ``mode`` (``"steer"``, ``"handoff"`` or ``"rerank"``); ``token`` is the
    token emitted at that step."""

    step: int
    position: int
    label: Hashable
    mode: str
    token: int


@dataclass
class HybridGeneration:
    """One completion of the hybrid: text, tokens, and what the router did."""

    prompt_index: int
    sample_index: int
    text: str
    token_ids: list[int]
    log: list[HybridEvent]
    finish_reason: str

    @property
    def n_tokens(self) -> int:
        return len(self.token_ids)

    @property
    def n_fired(self) -> int:
        return len(self.log)

    @property
    def steered_fraction(self) -> float:
        """Share of this completion's tokens the router touched (steered, handed off, re-ranked)."""
        return self.n_fired / self.n_tokens if self.n_tokens else 0.0


@dataclass
class HybridResult:
    """All completions of one :meth:`HybridDecoder.generate` call (rows prompt by prompt)."""

    generations: list[HybridGeneration]
    samples: Samples
    params: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.generations)

    @property
    def texts(self) -> list[str]:
        return [g.text for g in self.generations]

    @property
    def steered_fraction(self) -> float:
        """Tokens touched / tokens generated, over every completion (the firing rate)."""
        total = sum(g.n_tokens for g in self.generations)
        return sum(g.n_fired for g in self.generations) / total if total else 0.0

    @property
    def label_counts(self) -> dict[Hashable, int]:
        return dict(Counter(e.label for g in self.generations for e in g.log))

    @property
    def label_shares(self) -> dict[Hashable, float]:
        """Share of firings per label (empty when nothing fired)."""
        c = self.label_counts
        total = sum(c.values())
        return {k: v / total for k, v in c.items()} if total else {}

    def by_prompt(self) -> list[list[str]]:
        """Texts grouped per prompt."""
        return self.samples.by_prompt()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (labels as strings)."""
        return {
            "params": {
                k: (v if isinstance(v, (int, float, str, bool, type(None))) else repr(v))
                for k, v in self.params.items()
            },
            "steered_fraction": self.steered_fraction,
            "label_shares": {str(k): v for k, v in self.label_shares.items()},
            "generations": [
                {
                    "prompt_index": g.prompt_index,
                    "sample_index": g.sample_index,
                    "text": g.text,
                    "finish_reason": g.finish_reason,
                    "steered_fraction": g.steered_fraction,
                    "log": [[e.step, e.position, str(e.label), e.mode, e.token] for e in g.log],
                }
                for g in self.generations
            ],
        }

    @classmethod
    def from_samples(cls, samples: Samples, params: dict[str, Any]) -> HybridResult:
        gens = []
        for r in range(len(samples)):
            extra = samples.extra[r] if r < len(samples.extra) else {}
            gens.append(
                HybridGeneration(
                    prompt_index=samples.prompt_index[r],
                    sample_index=samples.sample_index[r],
                    text=samples.texts[r],
                    token_ids=samples.token_ids[r],
                    log=[HybridEvent(*e) for e in extra.get(LOG_KEY, [])],
                    finish_reason=samples.finish_reasons[r],
                )
            )
        return cls(gens, samples, params)


# -- vector controls -------------------------------------------------------------------


def random_vectors_like(
    vectors: Mapping[Hashable, Mapping[Site, torch.Tensor]], seed: int = 0
) -> dict[Hashable, dict[Site, torch.Tensor]]:
    """Random directions with the same norm as each label's vector at each site (seeded)."""
    g = torch.Generator().manual_seed(int(seed))
    out: dict[Hashable, dict[Site, torch.Tensor]] = {}
    for label, sites in vectors.items():
        out[label] = {}
        for site in sorted(sites):
            v = sites[site]
            r = torch.randn(v.shape[0], generator=g, dtype=torch.float64)
            out[label][site] = (r / r.norm() * float(v.double().norm())).to(v.dtype)
    return out


def bias_only_vectors(
    vectors: Mapping[Hashable, Mapping[Site, torch.Tensor]],
) -> dict[Hashable, dict[Site, torch.Tensor]]:
    """Every label gets one shared vector: at each site, the mean of the labels' vectors there."""
    sites = sorted({s for g in vectors.values() for s in g})
    mean = {s: torch.stack([g[s] for g in vectors.values() if s in g]).mean(0) for s in sites}
    return {label: dict(mean) for label in vectors}


# -- decoding text for the segment-start test ------------------------------------------


class _Row:
    __slots__ = ("ids", "n_prompt", "text", "win_text")

    def __init__(self, ids: list[int], text: str) -> None:
        self.ids, self.n_prompt, self.text, self.win_text = ids, len(ids), text, None


class _RowTexts:
    """Prefix text per row, kept up to date incrementally (a short window per new token)."""

    WINDOW = 8

    def __init__(self, tokenizer: Any, include_prompt: bool) -> None:
        self.tok = tokenizer
        self.include_prompt = include_prompt
        self.rows: dict[tuple[int, int], _Row] = {}
        self.synced = 0

    def _decode(self, ids: Sequence[int]) -> str:
        return self.tok.decode(list(ids), skip_special_tokens=True)

    def start(self, ctx: StepContext) -> None:
        self.rows.clear()
        self.synced = 0
        ids, mask = ctx.input_ids.tolist(), ctx.attention_mask.bool().tolist()
        for key, row, m in zip(_keys(ctx), ids, mask):
            prompt = [t for t, keep in zip(row, m) if keep]
            self.rows[key] = _Row(prompt, self._decode(prompt) if self.include_prompt else "")

    def _window_delta(self, row: _Row, tok: int) -> str | None:
        win = row.ids[-self.WINDOW :]
        if row.win_text is None:
            row.win_text = self._decode(win)
        a = row.win_text
        b = self._decode([*win, tok])
        if a.endswith("\ufffd") or not b.startswith(a):
            return None  # a multi-byte character split across tokens: decode in full
        return b[len(a) :]

    def sync(self, ctx: StepContext, step: int) -> None:
        """Append the tokens generated since the last sync (live rows only)."""
        if step <= self.synced:
            return
        new = ctx.generated[:, self.synced : step].tolist()
        done = ctx.done.tolist()
        for key, toks, d in zip(_keys(ctx), new, done):
            row = self.rows.get(key)
            if row is None or d:
                continue
            for tok in toks:
                delta = self._window_delta(row, tok)
                row.ids.append(tok)
                row.win_text = None
                if delta is None:
                    body = row.ids if self.include_prompt else row.ids[row.n_prompt :]
                    row.text = self._decode(body)
                else:
                    row.text += delta
        self.synced = step

    def prefix(self, key: tuple[int, int]) -> str:
        return self.rows[key].text

    def next_text(self, key: tuple[int, int], tok: int) -> str:
        row = self.rows[key]
        delta = self._window_delta(row, tok)
        return delta if delta is not None else self._decode([tok])


def _keys(ctx: StepContext) -> list[tuple[int, int]]:
    return list(zip(ctx.prompt_index.tolist(), ctx.sample_index.tolist()))


def _stream_keys(seed: int, ctx: StepContext, salt: int) -> torch.Tensor:
    """Per-row hash keys for an independent stream of uniforms (``salt`` picks the stream)."""
    return row_keys(seed, ctx.prompt_index, ctx.sample_index) ^ ((salt * 0x9E3779B1) & _M32)


# -- the router model's side of a run -----------------------------------------------------


class _TokenModel:
    """The router model in a run: its own KV cache, fed the tokens the base consumes."""

    def __init__(self, handle: Any, use_cache: bool) -> None:
        self.handle = handle
        self.use_cache = use_cache
        self.device = next(handle.model.parameters()).device
        self.cache = None
        self.rows: list[tuple[int, int]] = []
        self.logits: torch.Tensor | None = None

    def step(self, step: int, ctx: StepContext) -> None:
        rows = _keys(ctx)
        if step == 0:
            self.cache = new_cache(self.handle.model) if self.use_cache else None
        elif self.use_cache and rows != self.rows:
            # the loop dropped finished rows from its batch (and its cache): follow it
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


# -- one generate() call: the controller --------------------------------------------------


class _BaseView:
    """The base handle as the loop sees it: ``run`` may first peek (see the module docs)."""

    def __init__(self, handle: Any, run: _HybridRun) -> None:
        self._handle = handle
        self._run = run

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)

    def run(
        self,
        input_ids,
        attention_mask=None,
        *,
        edits=None,
        position_ids=None,
        past_key_values=None,
        use_cache=False,
        **kw,
    ):
        if self._run.need_peek:
            self._run.peek(self._handle, input_ids, attention_mask, position_ids, past_key_values)
        return self._handle.run(
            input_ids,
            attention_mask,
            edits=edits,
            position_ids=position_ids,
            past_key_values=past_key_values,
            use_cache=use_cache,
            **kw,
        )


class _HybridRun:
    """Per-call state of the hybrid: a controller of :func:`rlvr.sampling.sample`."""

    def __init__(
        self,
        dec: HybridDecoder,
        router: Router,
        *,
        temperature: float,
        top_p: float,
        seed: int,
        use_cache: bool,
    ) -> None:
        self.dec = dec
        self.router = router
        self.action = dec.action
        self.temperature, self.top_p, self.seed = temperature, top_p, seed
        self.labels = dec.labels
        needs_model = router.kind == "model" or self.action != "steer"
        self.token_model = _TokenModel(router.model, use_cache) if needs_model else None
        self.texts = (
            _RowTexts(dec.base.tokenizer, router.include_prompt)
            if isinstance(router, ModelRouter)
            else None
        )
        self.class_labels = (
            router.class_labels(self.labels) if isinstance(router, ProbeRouter) else None
        )
        self.steer = (
            Steer(dec.vectors, coef=dec.coef, positions=self._steer_decisions, record_as=STEER_KEY)
            if self.action == "steer"
            else None
        )
        self.step = -1
        self.ctx: StepContext | None = None
        self.cand: list | None = None
        self.final: list | None = None
        self.need_peek = False
        self._decisions: list | None = None
        self._steer_edits: dict | None = None

    # -- controller hooks ----------------------------------------------------------------
    def setup(self, model: Any) -> None:
        if self.steer is not None:
            self.steer.setup(model)

    def edits(self, step: int, ctx: StepContext) -> dict:
        self.step, self.ctx = step, ctx
        self.cand = self.final = self._steer_edits = None
        self.need_peek = False
        live = (~ctx.done).tolist()
        if self.texts is not None:
            if step == 0:
                self.texts.start(ctx)
            self.texts.sync(ctx, step)
        if self.token_model is not None:
            self.token_model.step(step, ctx)
        router = self.router
        if isinstance(router, ModelRouter):
            self.cand = self._model_candidates(ctx, live)
            if not router.unless_base:
                self.final = self.cand
            elif self.action == "steer":
                if any(c is not None for c in self.cand):
                    self.need_peek = True
                else:
                    self.final = self.cand
        elif isinstance(router, RandomRouter):
            got = router.decide(
                step_uniform(_stream_keys(router.seed, ctx, 1), step),
                step_uniform(_stream_keys(router.seed, ctx, 2), step),
            )
            self.final = self.cand = [g if ok else None for g, ok in zip(got, live)]
        probe_site = router.site if isinstance(router, ProbeRouter) else None
        if self.action != "steer":
            return {probe_site: self._probe_edit} if probe_site is not None else {}
        if self.final is not None:
            return self._steer_now()
        sites = set(self.steer.sites) | ({probe_site} if probe_site is not None else set())
        return {s: self._lazy_edit(s, s == probe_site) for s in sites}

    def select(self, step: int, logits: torch.Tensor, proposed: torch.Tensor, ctx: StepContext):
        if self.final is None:
            if isinstance(self.router, ModelRouter):  # unless_base, no vector: base logits known
                self.final = self._unless_base(self.cand, logits)
            else:
                raise RuntimeError(
                    "the probe router did not see its site in this forward pass: the model "
                    "handle ran no hook there"
                )
        live = (~ctx.done).tolist()
        fired = [r for r, (f, ok) in enumerate(zip(self.final, live)) if f is not None and ok]
        if not fired:
            return None
        tokens = proposed.clone()
        idx = torch.tensor(fired, device=logits.device)
        if self.action == "handoff":
            rl = self.token_model.logits_like(logits)[idx]
            u = step_uniform(row_keys(self.seed, ctx.prompt_index, ctx.sample_index), step)
            tokens[idx] = choose_tokens(rl, self.temperature, self.top_p, u[idx])
        elif self.action == "rerank":
            k = min(self.dec.rerank_k, logits.shape[-1])
            top = logits[idx].topk(k, dim=-1).indices  # the base's unsteered top-k
            score = self.token_model.logits_like(logits)[idx].gather(1, top)
            tokens[idx] = top.gather(1, score.argmax(-1, keepdim=True)).squeeze(1)
        pos = ctx.position_ids[:, -1].tolist()
        toks = tokens.tolist()
        for r in fired:
            event = HybridEvent(step, pos[r], self.final[r], self.action, toks[r])
            ctx.extra[r].setdefault(LOG_KEY, []).append(event)
        return tokens if self.action != "steer" else None

    # -- decisions -----------------------------------------------------------------------
    def _allowed(self, label: Hashable | None) -> Hashable | None:
        if label is None or (self.labels is not None and label not in self.labels):
            return None
        return label

    def _model_candidates(self, ctx: StepContext, live: list[bool]) -> list:
        router = self.router
        assert isinstance(router, ModelRouter) and self.texts is not None
        probs = torch.softmax(self.token_model.logits, dim=-1)
        p_top, top = probs.max(-1)
        out: list = []
        for key, ok, p, tok in zip(_keys(ctx), live, p_top.tolist(), top.tolist()):
            if not ok or p < router.tau:
                out.append(None)
                continue
            label = router.segment_start(self.texts.prefix(key), self.texts.next_text(key, tok))
            out.append(self._allowed(label))
        return out

    def _unless_base(self, cand: list, base_logits: torch.Tensor) -> list:
        """Drop candidates whose label the base's own most likely token would begin anyway."""
        router = self.router
        assert isinstance(router, ModelRouter) and self.texts is not None and self.ctx is not None
        top = base_logits.argmax(-1).tolist()
        out = []
        for key, c, tok in zip(_keys(self.ctx), cand, top):
            if c is None:
                out.append(None)
                continue
            base_label = router.segment_start(
                self.texts.prefix(key), self.texts.next_text(key, tok)
            )
            out.append(None if base_label == c else c)
        return out

    def _probe_decide(self, h: torch.Tensor) -> None:
        if self.final is not None:
            return
        got = self.router.decide(h[:, -1, :], self.class_labels)
        live = (~self.ctx.done).tolist()
        self.final = self.cand = [self._allowed(g) if ok else None for g, ok in zip(got, live)]

    def _probe_edit(self, h: torch.Tensor) -> torch.Tensor:
        self._probe_decide(h)
        return h

    # -- steering --------------------------------------------------------------------------
    def _steer_decisions(self, step: int, ctx: StepContext) -> list:
        """The per-step decision function handed to :class:`Steer`."""
        assert self._decisions is not None
        return self._decisions

    def _steer_now(self) -> dict:
        if self._steer_edits is None:
            assert self.final is not None
            self._decisions = self.final
            self._steer_edits = self.steer.edits(self.step, self.ctx)
        return self._steer_edits

    def _lazy_edit(self, site: Site, read_probe: bool) -> Callable[[torch.Tensor], torch.Tensor]:
        def edit(h: torch.Tensor) -> torch.Tensor:
            if read_probe:
                self._probe_decide(h)
            if self.final is None:
                raise RuntimeError(
                    f"the steering site {site} ran before the router decided (internal error)"
                )
            fn = self._steer_now().get(site)
            return fn(h) if fn is not None else h

        return edit

    def peek(self, handle: Any, input_ids, attention_mask, position_ids, cache) -> None:
        """Base logits for this step without this step's vector; the cache is left as found."""
        ctx = self.ctx
        assert ctx is not None and self.cand is not None
        self._decisions = [None] * ctx.batch_size
        history = self.steer.edits(self.step, ctx)  # earlier firings, when recomputing
        self._decisions = None
        n_before = cache.get_seq_length() if cache is not None else 0
        if n_before > 0:
            out = handle.run(
                input_ids,
                attention_mask,
                edits=history or None,
                position_ids=position_ids,
                past_key_values=cache,
                use_cache=True,
            )
            cache.crop(-int(input_ids.shape[1]))
            if cache.get_seq_length() != n_before:
                raise RuntimeError(
                    "could not restore the base model's KV cache after peeking: this cache "
                    "type does not crop; use unless_base=False or use_cache=False"
                )
        else:
            out = handle.run(
                input_ids, attention_mask, edits=history or None, position_ids=position_ids
            )
        self.final = self._unless_base(self.cand, out.logits[:, -1, :].float())
        self.need_peek = False


# -- the decoder ---------------------------------------------------------------------------


def _check_probability(x: Any, what: str) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not 0.0 <= x <= 1.0:
        raise ValueError(f"{what} must be a number in [0, 1], got {x!r}")
    return float(x)


class HybridDecoder:
    """Base writes, router schedules. Configuration only: each :meth:`generate` is independent.

    Parameters
    ----------
    base:
        The base model (handle, transformers model or checkpoint path): it writes the tokens.
    router:
        A :class:`~steering.routers.ModelRouter`, :class:`~steering.routers.ProbeRouter`
        or :class:`~steering.routers.RandomRouter`. Any model it carries must share the
        base's tokenizer.
    vectors:
        The base model's strategy vectors: ``{label: SteeringVector}``, a list of
        SteeringVectors (grouped by ``.label``), or ``{label: {Site: tensor}}``. Needed
        in steer mode; elsewhere they only name the labels. SteeringVectors carrying a
        fingerprint are checked against the base (``check_vectors=False`` skips that).
    mode:
        ``"steer"`` or ``"handoff"`` (see the module docstring).
    coef:
        Steering coefficient, one number or ``{label: number}``.
    labels:
        Labels allowed to fire (default: the vectors' labels; in handoff mode without
        vectors, every label the router gives).
    rerank, rerank_k:
        The unsteered re-rank control: on firing, the router's favourite among the base's
        unsteered top-``rerank_k`` tokens is emitted and no vector is added.
    random_firing, firing_rate, label_shares:
        The random-timing control. Without ``firing_rate`` the real router is run first on
        the same prompts and settings to measure its rate and label shares.
    random_vectors, bias_only, control_seed:
        The vector controls (steer mode only); ``control_seed`` seeds the random vectors
        and the random router.
    """

    def __init__(
        self,
        base: Any,
        router: Router,
        vectors: Any = None,
        *,
        mode: str = "steer",
        coef: float | Mapping[Hashable, float] = 1.0,
        labels: Sequence[Hashable] | None = None,
        rerank: bool = False,
        rerank_k: int = 5,
        random_firing: bool = False,
        firing_rate: float | None = None,
        label_shares: Mapping[Hashable, float] | None = None,
        random_vectors: bool = False,
        bias_only: bool = False,
        control_seed: int = 0,
        check_vectors: bool = True,
    ) -> None:
        self._config = dict(
            base=base,
            router=router,
            vectors=vectors,
            mode=mode,
            coef=coef,
            labels=labels,
            rerank=rerank,
            rerank_k=rerank_k,
            random_firing=random_firing,
            firing_rate=firing_rate,
            label_shares=label_shares,
            random_vectors=random_vectors,
            bias_only=bias_only,
            control_seed=control_seed,
            check_vectors=check_vectors,
        )
        try:
            self.base = probes.wrap(base)
        except TypeError as e:
            raise TypeError(f"the base model: {e}") from e
        if not isinstance(router, (ModelRouter, ProbeRouter, RandomRouter)):
            raise TypeError(
                f"router must be a ModelRouter, ProbeRouter or RandomRouter, got a "
                f"{type(router).__name__}"
            )
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
        self.router = router
        self.mode = mode
        self.rerank = bool(rerank)
        self.action = "rerank" if self.rerank else mode
        if isinstance(rerank_k, bool) or not isinstance(rerank_k, int) or rerank_k < 1:
            raise ValueError(f"rerank_k must be a positive int, got {rerank_k!r}")
        self.rerank_k = rerank_k
        self.coef = coef
        self.random_firing = bool(random_firing)
        self.random_vectors = bool(random_vectors)
        self.bias_only = bool(bias_only)
        self.control_seed = int(control_seed)
        self.firing_rate = (
            None if firing_rate is None else _check_probability(firing_rate, "firing_rate")
        )
        self.label_shares = dict(label_shares) if label_shares is not None else None
        if (firing_rate is not None or label_shares is not None) and not self.random_firing:
            raise ValueError(
                "firing_rate/label_shares set the random-firing control: pass random_firing=True"
            )
        if self.random_firing and isinstance(router, RandomRouter):
            raise ValueError(
                "random_firing replaces the router by a random one, but the router is "
                "already a RandomRouter: drop random_firing=True"
            )

        # the token model: who emits (handoff) or ranks (rerank) a token
        if router.model is not None:
            check_same_tokenizer(self.base.tokenizer, router.model.tokenizer)
        if self.action != "steer" and router.model is None:
            raise ValueError(
                f"{self.action} needs a token model to emit or rank tokens: give the "
                f"{type(router).__name__} a model= (the RL model), or use mode='steer'"
            )

        # vectors and their controls
        self.vectors: dict[Hashable, dict[Site, torch.Tensor]] | None = None
        if vectors is not None:
            if check_vectors:
                self._check_vector_provenance(vectors)
            groups = Steer(vectors).groups
            if any(k is None for k in groups):
                raise ValueError(
                    "every vector needs a label (the label the router fires): pass "
                    "{label: vector} or SteeringVectors with .label set"
                )
            Steer(groups).setup(self.base)
            if self.bias_only:
                groups = bias_only_vectors(groups)
            if self.random_vectors:
                groups = random_vectors_like(groups, self.control_seed)
            self.vectors = groups
        if (self.random_vectors or self.bias_only) and self.action != "steer":
            raise ValueError(
                f"random_vectors/bias_only change the added vector, but {self.action} adds "
                "none: use them with mode='steer' and rerank=False"
            )
        if self.action == "steer":
            if self.vectors is None:
                raise ValueError(
                    "steer mode adds the label's base-model vector: pass vectors= "
                    "({label: SteeringVector}), or use mode='handoff'"
                )
            Steer(self.vectors, coef=coef)  # validates coef against the labels
        if labels is not None:
            labels = tuple(labels)
            if self.action == "steer":
                missing = [x for x in labels if x not in self.vectors]
                if missing:
                    raise ValueError(f"labels {missing} have no vector: give one per label")
        elif self.vectors is not None:
            labels = tuple(self.vectors)
        self.labels: tuple[Hashable, ...] | None = labels

        if isinstance(router, ProbeRouter):
            self.base.check_site(router.site)
            router.class_labels(self.labels)  # fail now, not mid-run
            if self.action == "steer":
                late = [s for s in self.vectors_sites if exec_order(s) < exec_order(router.site)]
                if late:
                    raise ValueError(
                        f"the probe reads {router.site} but the vectors are added at "
                        f"{[s.name for s in late]}, earlier in the forward pass: the decision "
                        "must come first; read at or before the steering site"
                    )

    @property
    def vectors_sites(self) -> list[Site]:
        return sorted({s for g in (self.vectors or {}).values() for s in g})

    def __repr__(self) -> str:
        flags = [
            k
            for k in ("rerank", "random_firing", "random_vectors", "bias_only")
            if getattr(self, k)
        ]
        return (
            f"HybridDecoder(mode={self.mode}, router={self.router!r}, labels={self.labels}, "
            f"coef={self.coef}, controls={flags or 'none'})"
        )

    def _check_vector_provenance(self, vectors: Any) -> None:
        objs: list[Any] = []
        if isinstance(vectors, Mapping):
            objs = list(vectors.values())
        elif isinstance(vectors, (list, tuple)):
            objs = list(vectors)
        else:
            objs = [vectors]
        for v in objs:
            if hasattr(v, "check") and getattr(v, "fingerprint", None):
                v.check(self.base)

    def with_controls(self, **changes: Any) -> HybridDecoder:
        """A new decoder with the same configuration except ``changes`` (e.g. ``rerank=True``)."""
        unknown = set(changes) - set(self._config)
        if unknown:
            raise TypeError(f"unknown settings {sorted(unknown)}: use {sorted(self._config)}")
        cfg = {**self._config, **changes}
        if not cfg["random_firing"]:
            cfg["firing_rate"] = cfg["label_shares"] = None
        return HybridDecoder(**cfg)

    # -- running ---------------------------------------------------------------------------
    def generate(
        self,
        prompts: Sequence[str] | Sequence[Sequence[int]] | str,
        *,
        n: int = 1,
        temperature: float = 0.0,
        top_p: float = 1.0,
        max_new_tokens: int = 64,
        stop: Sequence[str] | str = (),
        seed: int = 0,
        batch_size: int = 16,
        progress: bool = True,
        use_cache: bool = True,
        eos_token_id: int | Sequence[int] | None = None,
        add_special_tokens: bool = True,
    ) -> HybridResult:
        """Decode ``n`` completions per prompt; arguments as in :func:`rlvr.sampling.sample`.

        Same seed -> same completions, independent of ``batch_size``. ``use_cache=False``
        recomputes both models on the whole prefix every token (the slow reference).
        """
        kw = dict(
            n=n,
            temperature=temperature,
            top_p=top_p,
            max_new_tokens=max_new_tokens,
            stop=stop,
            seed=seed,
            batch_size=batch_size,
            progress=progress,
            use_cache=use_cache,
            eos_token_id=eos_token_id,
            add_special_tokens=add_special_tokens,
        )
        router: Router = self.router
        params: dict[str, Any] = dict(
            mode=self.mode,
            action=self.action,
            router=repr(self.router),
            labels=repr(self.labels),
            coef=repr(self.coef),
            rerank_k=self.rerank_k if self.rerank else None,
            random_firing=self.random_firing,
            random_vectors=self.random_vectors,
            bias_only=self.bias_only,
            control_seed=self.control_seed,
            **{k: v for k, v in kw.items() if k not in ("progress", "stop")},
            stop=repr(stop),
        )
        if self.random_firing:
            rate, shares = self.firing_rate, self.label_shares
            if rate is None:
                real = self.with_controls(random_firing=False).generate(prompts, **kw)
                rate = real.steered_fraction
                shares = shares if shares is not None else real.label_shares
                params["measured_firing_rate"] = rate
            if not shares:
                if rate > 0 and not self.labels:
                    raise ValueError(
                        "random firing needs label shares: pass label_shares= or vectors "
                        "(their labels get equal shares)"
                    )
                shares = list(self.labels or [])
            model = self.router.model if self.action != "steer" else None
            router = RandomRouter(rate, shares, seed=self.control_seed, model=model)
            params.update(firing_rate=rate, label_shares=repr(router.shares))
        run = _HybridRun(
            self, router, temperature=temperature, top_p=top_p, seed=seed, use_cache=use_cache
        )
        samples = sample(_BaseView(self.base, run), prompts, controller=run, **kw)
        return HybridResult.from_samples(samples, params)
