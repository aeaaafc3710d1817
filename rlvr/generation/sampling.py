"""The one generation loop: batched, KV-cached sampling with seeds, stop strings and controllers.

Over 400 lines on purpose: what is left here is the loop itself (``sample``: settings,
batching and the final texts; ``_run_batch``: one batch's steps) and the docstring of the
conventions both keep. Draws, the forward functions, the controller protocol and the
settings record already live in their own modules.

pass@k evaluation, steering and the hybrid decoder all sample through :func:`sample`.
It sits on the bottom floor (``rlvr.generation``) and imports neither ``probes`` nor ``steering``:
the model is duck-typed. Give it either

- a *handle* — a :class:`~rlvr.generation.forward.Runner`: any object with
  ``.tokenizer`` and ``.run(input_ids, attention_mask, *, edits=None, position_ids=None,
  past_key_values=None, use_cache=False, logits_to_keep=0)`` returning an object with
  ``.logits`` and ``.past_key_values`` (``probes.wrap(...)`` gives one for HF, nnsight and
  TransformerLens models); controllers may edit the residual stream through it; or
- a plain Hugging Face causal LM plus ``tokenizer=`` — sampling and ``select``
  controllers work; residual edits need a handle.

How a batch is decoded
----------------------
Rows are the prompts repeated ``n`` times (row ``i * n + j`` is sample ``j`` of prompt
``i``), cut into batches of ``batch_size`` rows. Prompts are left-padded; position ids
are ``cumsum(attention_mask) - 1``, so padding never shifts a row's positions (this is
also what GPT-2's absolute position embeddings need). Step 0 is the prefill of the
prompts; every later step feeds one new token per row through a KV cache: a transformers
``DynamicCache`` (``use_cache="dynamic"``), or a pre-allocated one (``"static"``:
:mod:`rlvr.generation.kv_cache`, transformers' ``StaticLayer`` sized for the prompt plus
``max_new_tokens``, written in place, attention over its filled part; plain transformers
models only). Both give the same numbers, bit for bit (tested). ``use_cache=True`` takes
the static one for batches whose rows reach :data:`rlvr.generation.forward.STATIC_FROM` positions,
where it is faster, else the dynamic one. ``use_cache=False`` re-runs the whole sequence
every step instead: the slow reference the cached loop is tested against.

A row is *done* after the eos token, after a stop string, or after ``max_new_tokens``;
done rows get padding (attention mask 0), finished rows are dropped from the batch (and
the cache) as they accumulate, and the loop ends when every row is done.

Texts: with stop strings, each row's completion text is kept a token at a time
(:class:`rlvr.generation.detokenize.StopTexts`: a table lookup for tokenizers with one piece per
token, else a short window decode) and only what a new token added is searched, so a row
stops at the token after which its text (as returned: decoded without special tokens)
first holds a stop string. Without stop strings each row is decoded once, at the end.

Positions: a row whose prompt has ``L`` real tokens holds its prompt at absolute
positions ``0 .. L-1`` and its ``t``-th generated token (0-based) at ``L + t``. The
residual at position ``p`` is what predicts token ``p + 1``, so generated token ``t`` is
read off the logits at position ``L + t - 1`` — the last prompt position for ``t = 0``.

Randomness (how a token is drawn: :mod:`rlvr.generation.draws`): ``temperature=0`` is greedy;
otherwise each (prompt, sample, step) gets one uniform number from a counter-based hash of
``(seed, i, j, t)``, turned into a token by inverse-CDF sampling. What is guaranteed, and
tested:

- the same call (same seed, prompts, ``n``, ``batch_size``, model, device and library
  versions) gives bit-identical tokens and log-probs;
- the uniform numbers themselves do not depend on ``batch_size``, on which other rows
  share a batch, or on ``n`` (sample ``j`` of prompt ``i`` always gets the same ones);
- across batch sizes the logits agree only to float tolerance: another batch shape (or
  padding) can change the last bits of a matmul. Greedy tokens then agree except at
  exact near-ties, and a sampled token can differ only where its uniform number falls
  within that rounding of an edge of the CDF; after such a step the two rows continue
  from different tokens. This is rare but real (a steered T = 1 run differed in 1 of
  128 rows between batch sizes 1 and 64 on CPU), so compare runs made with the same
  ``batch_size`` when bit-identity matters, and larger ``n`` reproduces the first
  samples only up to the same caveat.

Log-probs: ``Samples.logprobs[r][t]`` is ``log_softmax(logits)[token]`` of the forward
that chose token ``t`` — temperature 1, no top-p truncation, *with* the controller's
edits in place (steered logits when steering). A token replaced by ``select`` gets its
log-prob under the same distribution.

The controller protocol (``setup``, ``before``, ``reads``, ``edits``, ``select``,
``after``, and the :class:`~rlvr.generation.controllers.StepContext` they see) is documented in
:mod:`rlvr.generation.controllers`; the forward functions shared with ``probes.handles`` are in
:mod:`rlvr.generation.forward`; the sampling settings are one :class:`~rlvr.generation.sampling_params.SamplingParams`
(or the same loose keywords).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from numbers import Integral
from typing import Any

import torch

from .controllers import Controllers, StepContext
from .detokenize import StopTexts, plain_decoder
from .draws import choose_tokens, row_keys, step_uniform
from .forward import (
    Runner,
    as_runner,
    cache_kind,
    new_cache,
    position_ids_from_mask,
)
from .sampling_params import UNSET, SamplingParams, resolve_params

__all__ = ["Samples", "sample"]

FINISH_REASONS = ("stop", "eos", "length")


# -- records ---------------------------------------------------------------------------


@dataclass
class Samples:
    """Completions: one entry per row, rows ordered prompt by prompt (``i * n + j``).

    ``token_ids`` are the generated tokens only (the eos token included when the row
    ended on it; every token up to the one that completed a stop string when it ended on
    a stop string). ``texts`` are decoded without special tokens and cut *before* the
    first stop string. ``logprobs`` align with ``token_ids`` (see the module docstring).
    ``finish_reasons`` are ``"stop"``, ``"eos"`` or ``"length"``. ``extra`` holds what
    controllers recorded per row.
    """

    prompts: list[Any]
    n: int
    prompt_index: list[int]
    sample_index: list[int]
    token_ids: list[list[int]]
    texts: list[str]
    logprobs: list[list[float]]
    finish_reasons: list[str]
    extra: list[dict[str, Any]] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.texts)

    def by_prompt(self) -> list[list[str]]:
        """Texts grouped per prompt: ``by_prompt()[i]`` holds the ``n`` samples of prompt i."""
        out: list[list[str]] = [[] for _ in self.prompts]
        for i, text in zip(self.prompt_index, self.texts):
            out[i].append(text)
        return out


# -- the model ----------------------------------------------------------------------------


def _eos_ids(tokenizer: Any, module: torch.nn.Module | None, given) -> list[int]:
    if given is not None:

        def is_id(x) -> bool:
            return isinstance(x, Integral) and not isinstance(x, bool)

        if is_id(given):
            return [int(given)]
        if isinstance(given, (str, bytes, bool)) or not all(is_id(x) for x in given):
            raise TypeError(
                f"eos_token_id must be a token id or a list of them (ints), got {given!r}: "
                "for a token's text use tokenizer.convert_tokens_to_ids(text)"
            )
        return [int(x) for x in given]
    ids: set[int] = set()
    if getattr(tokenizer, "eos_token_id", None) is not None:
        ids.add(int(tokenizer.eos_token_id))
    gen = getattr(module, "generation_config", None)
    e = getattr(gen, "eos_token_id", None)
    if e is not None:
        ids.update([int(e)] if isinstance(e, int) else [int(x) for x in e])
    return sorted(ids)


# -- prompts ---------------------------------------------------------------------------------


def _encode_prompts(prompts, tokenizer, add_special_tokens: bool) -> tuple[list, list[list[int]]]:
    if isinstance(prompts, str):
        prompts = [prompts]
    prompts = list(prompts)
    if not prompts:
        raise ValueError("no prompts to sample from")
    if all(isinstance(p, str) for p in prompts):
        enc = tokenizer(prompts, add_special_tokens=add_special_tokens)["input_ids"]
        ids = [list(map(int, x)) for x in enc]
    elif all(isinstance(p, (list, tuple)) or torch.is_tensor(p) for p in prompts):
        ids = [[int(t) for t in p] for p in prompts]
    else:
        raise TypeError("prompts must all be strings or all be lists of token ids")
    for i, x in enumerate(ids):
        if not x:
            raise ValueError(f"prompt {i} is empty after tokenization")
    return prompts, ids


def _left_pad(rows: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for b, r in enumerate(rows):
        ids[b, width - len(r) :] = torch.tensor(r, dtype=torch.long)
        mask[b, width - len(r) :] = 1
    return ids.to(device), mask.to(device)


# -- the loop ---------------------------------------------------------------------------------


def sample(
    model: Runner | torch.nn.Module,
    prompts: Sequence[str] | Sequence[Sequence[int]] | str,
    *,
    params: SamplingParams | None = None,
    tokenizer: Any = None,
    n: int = UNSET,
    temperature: float = UNSET,
    top_p: float = UNSET,
    max_new_tokens: int = UNSET,
    stop: Sequence[str] | str = UNSET,
    seed: int = UNSET,
    batch_size: int = 64,
    controller: Any = None,
    callback: Callable[[int, StepContext], None] | None = None,
    progress: bool = True,
    use_cache: bool | str = True,
    eos_token_id: int | Sequence[int] | None = None,
    add_special_tokens: bool = True,
) -> Samples:
    """Sample ``n`` completions per prompt; see the module docstring for every convention.

    The sampling settings are ``params=SamplingParams(...)`` or the loose keywords ``n``,
    ``temperature``, ``top_p``, ``max_new_tokens``, ``stop``, ``seed`` (defaults: those
    of :class:`SamplingParams`), not both. ``prompts`` are strings (tokenized with
    ``add_special_tokens``) or lists of token ids. ``stop`` strings are matched on the
    generated text as returned (decoded without special tokens); ``eos_token_id``
    defaults to the tokenizer's eos plus the model's ``generation_config`` eos ids
    (``[]``: never stop at eos). ``controller`` is one controller or a list
    (:mod:`rlvr.generation.controllers`); ``callback(step, ctx)`` observes. ``use_cache``: True (the
    KV cache that is faster for the batch's length), ``"static"``, ``"dynamic"`` (see the
    module docstring), or False to re-run the whole sequence each step (slow; a reference).
    """
    p = resolve_params(
        params,
        n=n,
        temperature=temperature,
        top_p=top_p,
        max_new_tokens=max_new_tokens,
        stop=stop,
        seed=seed,
    )
    n, max_new_tokens, stops = p.n, p.max_new_tokens, list(p.stop)
    runner, module = as_runner(model, tokenizer)
    cache_kind(use_cache, runner)  # refuses a bad value before any work
    tok = runner.tokenizer
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    pad_id = getattr(tok, "pad_token_id", None)
    if pad_id is None:
        pad_id = getattr(tok, "eos_token_id", None)
    if pad_id is None:
        raise ValueError("the tokenizer has neither a pad nor an eos token: set one")
    eos = _eos_ids(tok, module, eos_token_id)
    controllers = Controllers(controller)
    controllers.setup(model)
    prompt_list, prompt_ids = _encode_prompts(prompts, tok, add_special_tokens)
    cfg_ = getattr(module, "config", None)
    limit = getattr(cfg_, "max_position_embeddings", None) or getattr(cfg_, "n_positions", None)
    longest = max(len(x) for x in prompt_ids)
    if isinstance(limit, int) and longest + max_new_tokens > limit:
        raise ValueError(
            f"the longest prompt ({longest} tokens) plus max_new_tokens ({max_new_tokens}) "
            f"exceeds the model's {limit} positions: shorten the prompt or lower max_new_tokens"
        )
    device = next(module.parameters()).device if module is not None else torch.device("cpu")

    rows = [(i, j) for i in range(len(prompt_ids)) for j in range(n)]
    token_ids: list[list[int]] = [[] for _ in rows]
    logprobs: list[list[float]] = [[] for _ in rows]
    finish: list[str] = ["length"] * len(rows)
    texts: list[str | None] = [None] * len(rows)  # filled by the batches that track stops
    extra: list[dict[str, Any]] = [{} for _ in rows]
    cfg = dict(
        temperature=p.temperature,
        top_p=p.top_p,
        max_new_tokens=max_new_tokens,
        stop=stops,
        eos=eos,
        pad_id=int(pad_id),
        use_cache=use_cache,
        decode=plain_decoder(tok),
    )

    from tqdm.auto import tqdm

    bar = tqdm(total=len(prompt_ids), unit="prompt", desc="sampling", disable=not progress)
    finished_prompts = 0
    try:
        with torch.no_grad():
            for start in range(0, len(rows), batch_size):
                chunk = list(range(start, min(start + batch_size, len(rows))))
                _run_batch(
                    runner,
                    module,
                    tok,
                    [prompt_ids[rows[r][0]] for r in chunk],
                    [rows[r] for r in chunk],
                    [extra[r] for r in chunk],
                    controllers,
                    callback,
                    p.seed,
                    device,
                    cfg,
                    out=(chunk, token_ids, logprobs, finish, texts),
                )
                now = (chunk[-1] + 1) // n
                bar.update(now - finished_prompts)
                finished_prompts = now
    finally:
        bar.close()

    decode, eos_set = cfg["decode"], set(eos)
    for r, ids in enumerate(token_ids):
        text = texts[r]
        if text is None:  # no stop strings: each row decoded once, here
            text = decode([t for t in ids if t not in eos_set])
        cut = _first_stop(text, stops)
        if cut is not None:
            text = text[:cut]
            finish[r] = "stop"
        texts[r] = text
    return Samples(
        prompts=prompt_list,
        n=n,
        prompt_index=[i for i, _ in rows],
        sample_index=[j for _, j in rows],
        token_ids=token_ids,
        texts=texts,
        logprobs=logprobs,
        finish_reasons=finish,
        extra=extra,
        params=p.to_dict(),
    )


def _first_stop(text: str, stops: Sequence[str]) -> int | None:
    hits = [i for i in (text.find(s) for s in stops) if i >= 0]
    return min(hits) if hits else None


def _accepts(fn, name: str) -> bool:
    params = inspect.signature(fn).parameters
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _run_batch(
    runner: Runner,
    module: torch.nn.Module | None,
    tok,
    prompt_ids: list[list[int]],
    rows: list[tuple[int, int]],
    extra: list[dict],
    controllers: Controllers,
    callback,
    seed: int,
    device,
    cfg: dict,
    out,
) -> None:
    chunk, token_ids, logprobs, finish, texts = out
    pad_id, eos, stops = cfg["pad_id"], cfg["eos"], cfg["stop"]
    max_new = cfg["max_new_tokens"]
    ids, am = _left_pad(prompt_ids, pad_id, device)
    B, P = ids.shape
    kind = cache_kind(cfg["use_cache"], runner, P + max_new)
    use_cache = kind is not None
    prompt_index = torch.tensor([i for i, _ in rows], device=device)
    sample_index = torch.tensor([j for _, j in rows], device=device)
    keys = row_keys(seed, prompt_index, sample_index)
    eos_t = torch.tensor(eos, dtype=torch.long, device=device)
    # each row's completion text, a token at a time, where stop strings are looked for
    watch = StopTexts(cfg["decode"], B, stops) if stops else None

    # Per batch row (all B): what is recorded.
    gen = torch.full((B, max_new), pad_id, dtype=torch.long, device=device)
    lps = torch.zeros((B, max_new), dtype=torch.float32, device=device)
    lengths = torch.zeros(B, dtype=torch.long, device=device)
    done = torch.zeros(B, dtype=torch.bool, device=device)
    reason = ["length"] * B

    # The running batch: rows still decoding (``alive`` maps them to batch rows).
    alive = torch.arange(B, device=device)
    mask = torch.zeros((B, P + max_new), dtype=torch.long, device=device)
    mask[:, :P] = am
    run_ids = ids
    prompt_len = am.sum(-1)
    cache = new_cache(module, P + max_new if kind == "static" else None) if use_cache else None
    last = None
    # only the last position's logits are needed (a real vocabulary makes the rest huge)
    last_only = {"logits_to_keep": 1} if _accepts(runner.run, "logits_to_keep") else {}
    greedy = cfg["temperature"] == 0  # no uniform numbers needed
    # what the running rows carry, refreshed only when rows are dropped
    alive_list, run_keys = alive.tolist(), keys
    run_pidx, run_sidx = prompt_index, sample_index
    run_extra = [extra[b] for b in alive_list]
    run_done = torch.zeros(B, dtype=torch.bool, device=device)

    for t in range(max_new):
        if not use_cache:
            inp = torch.cat([run_ids, gen[alive, :t]], dim=1)
            call_mask = mask[:, : P + t]
            pos = position_ids_from_mask(call_mask)
        elif t == 0:
            inp, call_mask = run_ids, mask[:, :P]
            pos = position_ids_from_mask(call_mask)
        else:
            inp, call_mask = last[:, None], mask[:, : P + t]
            pos = (prompt_len + t - 1)[:, None]
        ctx = StepContext(
            step=t,
            input_ids=inp,
            position_ids=pos,
            attention_mask=call_mask,
            prompt_lengths=prompt_len,
            generated=gen[alive, :t],
            done=run_done,
            prompt_index=run_pidx,
            sample_index=run_sidx,
            extra=run_extra,
        )
        controllers.before(t, ctx)
        edits = controllers.edits(t, ctx)
        res = runner.run(
            inp,
            call_mask,
            edits=edits or None,
            position_ids=pos,
            past_key_values=cache,
            use_cache=use_cache,
            **last_only,
        )
        if use_cache:
            if res.past_key_values is not None:
                cache = res.past_key_values
            if t == 0 and cache.get_seq_length() != P:
                raise RuntimeError(
                    f"the model did not fill the KV cache ({cache.get_seq_length()} of {P} "
                    "prompt tokens): this backend cannot decode with a cache here; "
                    "pass use_cache=False"
                )
        logits = res.logits[:, -1, :].float()
        ctx.logits = logits
        u = None if greedy else step_uniform(run_keys, t)
        tokens = choose_tokens(logits, cfg["temperature"], cfg["top_p"], u)
        tokens = controllers.select(t, logits, tokens, ctx)
        was_done = ctx.done
        live = ~was_done
        tokens = tokens.masked_fill(was_done, pad_id)
        lp = torch.log_softmax(logits, dim=-1).gather(1, tokens[:, None]).squeeze(1)
        gen[alive, t] = tokens
        lps[alive, t] = lp
        lengths[alive] += live.long()
        mask[:, P + t] = live.long()
        hit_eos = live & torch.isin(tokens, eos_t)
        now_done = was_done | hit_eos
        if bool(hit_eos.any()):
            for a in hit_eos.nonzero().squeeze(1).tolist():
                reason[alive_list[a]] = "eos"
        if watch is not None:
            toks = tokens.tolist()
            for a in (~now_done).nonzero().squeeze(1).tolist():
                b = alive_list[a]
                if watch.add(b, toks[a]):
                    now_done[a] = True
                    reason[b] = "stop"
        done[alive] = now_done
        run_done = now_done
        ctx.done, ctx.tokens, ctx.stepped = now_done, tokens, live
        ctx.generated = gen[alive, : t + 1]
        controllers.after(t, ctx)
        if callback is not None:
            callback(t, ctx)
        if bool(now_done.all()):
            break
        last = tokens
        n_done = int(now_done.sum())
        if n_done and n_done >= max(1, len(alive_list) // 8):
            keep = (~now_done).nonzero().squeeze(1)
            alive, mask, run_ids = alive[keep], mask[keep], run_ids[keep]
            prompt_len, last = prompt_len[keep], last[keep]
            run_keys, run_pidx, run_sidx = run_keys[keep], run_pidx[keep], run_sidx[keep]
            run_done = run_done[keep]
            alive_list = alive.tolist()
            run_extra = [extra[b] for b in alive_list]
            if cache is not None:
                cache.batch_select_indices(keep)

    for b, r in enumerate(chunk):
        k = int(lengths[b])
        token_ids[r] = gen[b, :k].tolist()
        logprobs[r] = lps[b, :k].tolist()
        finish[r] = reason[b]
        if watch is not None:
            texts[r] = watch.texts[b].text
