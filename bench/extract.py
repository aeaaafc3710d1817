"""Extraction cost against a plain forward pass and TransformerLens run_with_cache.

Same model (Llama, 4 layers, d_model 256, random init), same batch (32 x 256 tokens),
measured in one run; prints ratios (median of repeats after a warm-up). Targets:
extraction of 2 sites at decision positions <= 1.05x a plain HF forward (below 1x when
the last site is early, since the pass stops there), and faster than caching everything.

    python bench/extract.py [--repeats 5] [--batch 32] [--seq 256]
"""

from __future__ import annotations

import argparse
import os
import sys

import torch
from transformers import LlamaConfig, LlamaForCausalLM

import probes
from probes import LabeledTrace, Site

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import timed_round_robin  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    import os
    import sys
    import tempfile

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
    from conftest import CHARS, char_tokenizer

    tok = char_tokenizer()
    cfg = LlamaConfig(
        vocab_size=4 + len(CHARS),
        hidden_size=256,
        intermediate_size=1024,
        num_hidden_layers=4,
        num_attention_heads=8,
        num_key_value_heads=8,
        max_position_embeddings=args.seq + 8,
        pad_token_id=0,
    )
    model = LlamaForCausalLM(cfg).eval()
    h = probes.wrap(model, tok)

    import random

    rng = random.Random(0)
    traces = []
    for _ in range(args.batch):
        text = "".join(rng.choice("abcdefgh xyz=?") for _ in range(args.seq - 1))
        spans = [(i, i + 2, "check") for i in range(8, len(text) - 2, 40)]
        spans += [(i, i + 3, "step") for i in range(20, len(text) - 3, 40)]
        traces.append(LabeledTrace(text, spans))
    aligned = [probes.align(t, tok) for t in traces]
    T = max(len(a.input_ids) for a in aligned)
    ids = torch.tensor([a.input_ids + [0] * (T - len(a.input_ids)) for a in aligned])
    mask = torch.arange(T)[None] < torch.tensor([len(a.input_ids) for a in aligned])[:, None]
    mask = mask.long()
    n_pos = sum(len(a.spans) for a in aligned)

    def plain():
        with torch.no_grad():
            model(input_ids=ids, attention_mask=mask)

    def ours(sites):
        def go():
            probes.extract(
                h, traces, sites, "decision", batch_size=args.batch, rest=False, progress=False
            )

        return go

    late = [Site(1), Site(3)]
    early = [Site(0), Site(1)]

    from transformer_lens.model_bridge import TransformerBridge

    with tempfile.TemporaryDirectory() as d:
        model.save_pretrained(d)
        tok.save_pretrained(d)
        bridge = TransformerBridge.boot_transformers(d, device="cpu")
    cache_bytes = {}

    def tl_cache():
        with torch.no_grad():
            _, cache = bridge.run_with_cache(ids, attention_mask=mask)
        cache_bytes["all"] = sum(v.numel() * v.element_size() for v in cache.values())

    results = timed_round_robin(
        {
            "plain HF forward": plain,
            "ours: 2 sites (layers 1, 3), decision": ours(late),
            "ours: 2 sites (layers 0, 1), decision": ours(early),
            "TransformerLens run_with_cache (all hooks)": tl_cache,
        },
        args.repeats,
    )

    base = results["plain HF forward"]
    print(
        f"model: Llama 4 layers, d_model 256; batch {args.batch} x {T} tokens; "
        f"{n_pos} decision positions; {args.threads} threads; median of {args.repeats}"
    )
    print(f"{'method':46s} {'seconds':>9s} {'x plain':>8s}")
    for k, v in results.items():
        print(f"{k:46s} {v:9.4f} {v / base:8.2f}")
    ours_bytes = n_pos * 2 * 256 * 4
    print(
        f"activation memory kept: ours {ours_bytes / 1e6:.2f} MB (positions x sites x d_model)"
        f" vs run_with_cache {cache_bytes['all'] / 1e6:.1f} MB (batch x seq x every hook)"
    )
    print("targets: ours(late) <= 1.05x plain; ours(early) < 1x; ours faster than run_with_cache")


if __name__ == "__main__":
    main()
