"""Hybrid decoding cost against base-only sampling, and against a recompute-everything hybrid.

Two random-init Llama models (4 layers, d_model 256, the test suite's character
vocabulary), batch 16, 128 new tokens, greedy, no early stop (so every method decodes the
same number of tokens). Methods, measured in the same run, alternating each round
(median of repeats after a warm-up):

- ``base``: the base model alone through the one sampling loop (the baseline);
- ``hybrid steer``: ModelRouter on the RL model, both models KV-cached (target <= 2.0x);
- ``hybrid handoff``: the same router emitting the tokens it fires on;
- ``hybrid handoff unless_base``: firing only where the base would not begin the label;
- ``base, dynamic`` / ``hybrid steer, dynamic`` and ``..., static``: the same two with
  each KV cache named (``use_cache=True``, the others' setting, takes the static one from
  :data:`rlvr.generation.forward.STATIC_FROM` positions a row on);
- ``hybrid recompute``: both models re-run on the whole prefix every token (how
  published hybrids decode; O(N^2)). It is ~50x slower, so it is timed once, after the
  others have warmed everything up (``--skip-recompute`` leaves it out).

    python bench/hybrid.py [--repeats 3] [--batch 16] [--new 128] [--threads 1]
                           [--layers 4] [--d-model 256] [--device cpu] [--check]

What bounds the ratio is printed beside it, measured in the same run (median over
``--repeats`` further runs): the seconds base-only sampling and the steer hybrid spend inside
the models' forwards (the hybrid's: the base's, with its steering hook, and the router
model's). The hybrid's forwards / base-only's wall time is what a hybrid loop with no cost
of its own would reach.

``--check`` first verifies, on the chosen device, that a handoff hybrid firing at every
token reproduces the router model's own decoding, that one never firing reproduces the
base, and that the cached hybrid (unless_base, handoff) matches the recompute one.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM

import probes
from probes import Site
from rlvr.generation.sampling import sample
from steering.hybrid import HybridDecoder, ModelRouter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import forward_seconds, timed, timed_round_robin  # noqa: E402


def segment_start(prefix: str, next_text: str) -> str | None:
    """A stand-in labeller: a vowel begins a 'check' segment, a digit an 'answer' segment."""
    c = next_text[:1]
    if c in "aeiou":
        return "check"
    if c.isdigit():
        return "answer"
    return None


def check(base, rl, vectors, prompts, kw) -> None:
    """Correctness on this device (printed, not asserted: a benchmark never fails)."""

    def always(prefix: str, nxt: str) -> str:
        return "check"

    def never(prefix: str, nxt: str) -> None:
        return None

    kw = {**kw, "temperature": 1.0, "seed": 1}
    ho = HybridDecoder(base, ModelRouter(rl, always), mode="handoff").generate(prompts, **kw)
    print(
        "check: handoff firing every token == router sampling:",
        ho.samples.token_ids == sample(rl, prompts, **kw).token_ids,
    )
    no = HybridDecoder(base, ModelRouter(rl, never), vectors).generate(prompts, **kw)
    print(
        "check: never firing == base sampling:",
        no.samples.token_ids == sample(base, prompts, **kw).token_ids,
    )
    unless = HybridDecoder(base, ModelRouter(rl, segment_start, unless_base=True), mode="handoff")
    a = unless.generate(prompts, **kw)
    b = unless.generate(prompts, use_cache=False, **kw)
    same = sum(x == y for x, y in zip(a.samples.token_ids, b.samples.token_ids))
    print(
        f"check: cached (unless_base) == recompute for {same}/{len(prompts)} rows, "
        f"steered fraction {a.steered_fraction:.2f} vs {b.steered_fraction:.2f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--new", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--skip-recompute", action="store_true")
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
    from conftest import CHARS, char_tokenizer

    def llama(seed: int) -> LlamaForCausalLM:
        torch.manual_seed(seed)
        cfg = LlamaConfig(
            vocab_size=4 + len(CHARS),
            hidden_size=args.d_model,
            intermediate_size=4 * args.d_model,
            num_hidden_layers=args.layers,
            num_attention_heads=max(1, args.d_model // 32),
            num_key_value_heads=max(1, args.d_model // 32),
            max_position_embeddings=512,
            pad_token_id=0,
        )
        model = LlamaForCausalLM(cfg).eval()
        with torch.no_grad():  # peaked next-token distributions, as a trained model has
            model.lm_head.weight.mul_(20)
        return model.to(args.device)

    base = probes.wrap(llama(0), char_tokenizer())
    rl = probes.wrap(llama(1), char_tokenizer())
    g = torch.Generator().manual_seed(0)
    site = Site(args.layers // 2)
    vectors = {
        lab: {site: 0.05 * torch.randn(args.d_model, generator=g)} for lab in ("check", "answer")
    }
    words = "the quick brown fox jumps over the lazy dog 0123456789".split()
    prompts = [" ".join(words[i % 7 : i % 7 + 2 + i % 4]) + ":" for i in range(args.batch)]
    kw = dict(
        temperature=0.0,
        max_new_tokens=args.new,
        batch_size=args.batch,
        progress=False,
        eos_token_id=[],  # no early stop: every method decodes the same number of tokens
    )
    router = ModelRouter(rl, segment_start)
    steer = HybridDecoder(base, router, vectors, mode="steer", coef=2.0)
    handoff = HybridDecoder(base, router, mode="handoff")
    unless = HybridDecoder(base, ModelRouter(rl, segment_start, unless_base=True), mode="handoff")
    fns = {
        "base": lambda: sample(base, prompts, **kw),
        "hybrid steer": lambda: steer.generate(prompts, **kw),
        "hybrid handoff": lambda: handoff.generate(prompts, **kw),
        "hybrid handoff unless_base": lambda: unless.generate(prompts, **kw),
    }
    import rlvr.generation.forward

    for kind in getattr(
        rlvr.generation.forward, "CACHE_KINDS", ()
    ):  # a checkout that has the choice
        fns[f"base, {kind}"] = lambda k=kind: sample(base, prompts, use_cache=k, **kw)
        fns[f"hybrid steer, {kind}"] = lambda k=kind: steer.generate(prompts, use_cache=k, **kw)
    print(
        f"Llama {args.layers} layers d_model {args.d_model} on {args.device}, batch "
        f"{args.batch}, {args.new} new tokens, {args.threads} thread(s), median of {args.repeats}"
    )
    if hasattr(os, "getloadavg"):
        print(f"load average before: {os.getloadavg()[0]:.2f}")
    if args.check:
        check(base, rl, vectors, prompts, kw)
    fired = {k: fns[k]() for k in fns if k.startswith("hybrid")}
    t = timed_round_robin(fns, args.repeats)
    if not args.skip_recompute:
        t0 = time.perf_counter()
        fired["hybrid recompute"] = steer.generate(prompts, use_cache=False, **kw)
        t["hybrid recompute"] = time.perf_counter() - t0
        same = fired["hybrid recompute"].texts == fired["hybrid steer"].texts
        print(f"recompute hybrid gives the same texts as the cached one: {same}")
    if hasattr(os, "getloadavg"):
        print(f"load average after:  {os.getloadavg()[0]:.2f}")
    for k, v in t.items():
        extra = ""
        if k in fired:
            extra = f"  steered fraction {fired[k].steered_fraction:.2f}"
        print(f"{k:26s} {v:7.3f} s  {v / t['base']:5.2f}x base{extra}")
    print(f"target: hybrid steer <= 2.0x base -> {t['hybrid steer'] / t['base']:.2f}x")
    for kind in getattr(rlvr.generation.forward, "CACHE_KINDS", ()):
        print(
            f"{kind} cache: hybrid steer {t[f'hybrid steer, {kind}'] / t[f'base, {kind}']:.2f}x "
            f"base; {t[f'base, {kind}'] / t['base']:.2f}x the default's base time"
        )
    inside: dict[str, list[tuple[float, float]]] = {"base": [], "hybrid steer": []}
    for _ in range(args.repeats):
        for name, handles in (("base", (base,)), ("hybrid steer", (base, rl))):
            with forward_seconds(*handles) as fwd:
                wall = timed(fns[name])
            inside[name].append((fwd["seconds"], wall))
    (fb, wb), (fh, wh) = (
        tuple(statistics.median(x) for x in zip(*inside[k])) for k in ("base", "hybrid steer")
    )
    print(
        f"inside the forwards: base {fb:.3f} s of {wb:.3f} s ({fb / wb:.0%}); hybrid steer "
        f"{fh:.3f} s of {wh:.3f} s ({fh / wh:.0%}; base + router model)"
    )
    print(
        f"bound: the hybrid's forwards alone / base-only = {fh / wb:.2f}x (a hybrid loop that "
        f"cost nothing would reach this); its forwards / base's forwards {fh / fb:.2f}x"
    )
    if "hybrid recompute" in t:
        speedup = t["hybrid recompute"] / t["hybrid steer"]
        print(f"cached hybrid is {speedup:.1f}x faster than the recompute hybrid (timed once)")


if __name__ == "__main__":
    main()
