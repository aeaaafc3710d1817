"""Cost of extraction, steering and the hybrid at a real model's size (random init, no download).

Builds two randomly initialised models with the Qwen2-1.5B architecture (28 layers,
d_model 1536, GQA 12/2 heads, vocab 151936) and prints, measured in the same run:

- extraction of 2 sites at span-decision positions vs a plain forward pass,
- steered vs unsteered sampling (KV-cached, batched),
- hybrid (RL-model router, both models cached) vs base-only sampling;
- the pre-allocated KV cache (``use_cache="static"``) against the dynamic one, for
  sampling and the hybrid (below 1: the static one is faster on this device).

Meant for one GPU (under 5 minutes on an H100). ``--size tiny`` runs a scaled-down Qwen2
on the CPU in seconds (the test suite does that).

    python bench/gpu_check.py [--size qwen2-1.5b|tiny] [--device cuda] [--batch 16]
                              [--seq 512] [--new 128] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import sys

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

import probes
from probes import LabeledTrace, Site
from rlvr.generation.sampling import sample
from steering import HybridDecoder, ModelRouter, Steer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import char_tokenizer, timed_round_robin  # noqa: E402

SIZES = {
    "qwen2-1.5b": dict(
        hidden_size=1536,
        intermediate_size=8960,
        num_hidden_layers=28,
        num_attention_heads=12,
        num_key_value_heads=2,
        vocab_size=151936,
        rope_theta=1e6,
        tie_word_embeddings=True,
    ),
    "tiny": dict(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=512,
        rope_theta=1e6,
        tie_word_embeddings=True,
    ),
}


def build(size: str, seed: int, device: str, dtype: torch.dtype) -> Qwen2ForCausalLM:
    torch.manual_seed(seed)
    cfg = Qwen2Config(
        **SIZES[size],
        max_position_embeddings=4096,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=None,
    )
    with torch.device(device):  # initialise in place: 1.5B parameters on the CPU take minutes
        model = Qwen2ForCausalLM(cfg)
    return model.to(dtype=dtype).eval()


def segment_start(prefix: str, next_text: str) -> str | None:
    return "check" if next_text[:1] == "?" else None


def run(args) -> dict[str, float]:
    dtype = torch.bfloat16 if args.device == "cuda" else torch.float32
    tok = char_tokenizer()
    base = probes.wrap(build(args.size, 0, args.device, dtype), tok)
    rl = probes.wrap(build(args.size, 1, args.device, dtype), tok)
    L, d = base.n_layers, base.d_model
    g = torch.Generator().manual_seed(0)
    letters = "abcdefghij?=."
    texts = [
        "".join(
            letters[int(i)] for i in torch.randint(0, len(letters), (args.seq - 1,), generator=g)
        )
        for _ in range(args.batch)
    ]
    traces = [
        LabeledTrace(t, [(i, i + 1, "check") for i, c in enumerate(t) if c == "?" and i > 0])
        for t in texts
    ]
    enc = base.encode(texts)
    sites = [Site(L // 2), Site(L - 2)]
    vec = {"check": {Site(L // 2): torch.randn(d, generator=g).to(args.device, dtype) * 0.1}}
    prompts = [t[: args.prompt] for t in texts]
    common = dict(
        n=1,
        temperature=0.0,
        max_new_tokens=args.new,
        seed=0,
        batch_size=args.batch,
        progress=False,
        eos_token_id=[],
    )

    def plain():
        with torch.no_grad():
            base.model(**enc)

    def extract():
        probes.extract(
            base, traces, sites, "decision", rest=False, batch_size=args.batch, progress=False
        )

    def unsteered():
        sample(base, prompts, **common)

    def steered():
        sample(base, prompts, controller=Steer(vec, coef=1.0, positions="generated"), **common)

    hyb = HybridDecoder(base, ModelRouter(rl, segment_start), vec, mode="steer", coef=1.0)

    def hybrid():
        hyb.generate(prompts, **common)

    def unsteered_static():
        sample(base, prompts, use_cache="static", **common)

    def hybrid_static():
        hyb.generate(prompts, use_cache="static", **common)

    with torch.no_grad():
        t = timed_round_robin(
            {
                "plain forward": plain,
                "extract 2 sites": extract,
                "sample unsteered": unsteered,
                "sample steered": steered,
                "hybrid steer": hybrid,
                "sample, static cache": unsteered_static,
                "hybrid, static cache": hybrid_static,
            },
            args.repeats,
        )
    print(
        f"Qwen2 architecture '{args.size}' ({L} layers, d_model {d}), random init, "
        f"{args.device} {str(dtype).replace('torch.', '')}; extraction batch {args.batch} x "
        f"{args.seq} tokens; sampling batch {args.batch}, {args.new} new tokens; "
        f"median of {args.repeats}"
    )
    rows = [
        (
            "extraction (2 sites) / plain forward",
            t["extract 2 sites"] / t["plain forward"],
            "<= 1.05",
        ),
        ("steered / unsteered sampling", t["sample steered"] / t["sample unsteered"], "<= 1.05"),
        ("hybrid / base-only sampling", t["hybrid steer"] / t["sample unsteered"], "<= 2.3"),
        (
            "static / dynamic KV cache, sampling",
            t["sample, static cache"] / t["sample unsteered"],
            "< 1: static",
        ),
        (
            "static / dynamic KV cache, hybrid",
            t["hybrid, static cache"] / t["hybrid steer"],
            "< 1: static",
        ),
    ]
    print(f"{'ratio':42s} {'value':>7s}  target")
    for name, r, target in rows:
        print(f"{name:42s} {r:7.2f}  {target}")
    for k, v in t.items():
        print(f"  {k:20s} {v:8.3f} s")
    return {name: r for name, r, _ in rows}


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="qwen2-1.5b")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--prompt", type=int, default=64)
    ap.add_argument("--new", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    return run(ap.parse_args(argv))


if __name__ == "__main__":
    main()
