"""Benchmark: steered, KV-cached, batched sampling against its baselines (same run, same model).

    python bench/steer_generate.py                 # Llama 4 layers, d_model 256, batch 16, 256 tokens
    python bench/steer_generate.py --new-tokens 64 --nocache-repeats 0   # quick look

Prints the median wall time of each method and the ratios:

(a) our steered sampling vs unsteered Hugging Face ``model.generate`` (target <= 1.05x)
    and vs our own unsteered sampling (the cost of steering itself);
(b) our steered sampling vs a loop that re-runs the whole sequence for every token
    (``use_cache=False``: what an O(N^2) hybrid decoder costs; target >= 10x at 256 tokens).

Every method samples at temperature 1 with top-p 1 and never stops early (no eos), so all
do the same number of steps. A warm-up of every method comes first; then ``--repeats``
rounds (interleaved, so load drift hits all methods alike), median reported. The no-cache
loop is slow (minutes at 256 tokens on a CPU), so it runs ``--nocache-repeats`` times.
No assertions: this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import char_tokenizer, timed  # noqa: E402


def build(args):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=args.vocab,
        hidden_size=args.d_model,
        intermediate_size=int(args.d_model * 8 / 3) // 8 * 8,
        num_hidden_layers=args.layers,
        num_attention_heads=max(1, args.d_model // 64),
        num_key_value_heads=max(1, args.d_model // 64),
        max_position_embeddings=4096,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=None,  # nobody stops early: every method does the same steps
    )
    return LlamaForCausalLM(cfg).to(args.device).eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--vocab", type=int, default=2048)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--new-tokens", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--nocache-repeats", type=int, default=1, help="0 skips the no-cache loop")
    ap.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (1 is stable on shared machines)"
    )
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    import probes
    from probes import Site
    from rlvr.generation.sampling import sample
    from steering import Steer

    model = build(args)
    tok = char_tokenizer()
    handle = probes.wrap(model, tok)
    prompts = [f"q{i}: 12+{3 * i}=? " * (1 + i % 3) for i in range(args.batch)]
    g = torch.Generator().manual_seed(0)
    steer = Steer({Site(args.layers // 2): torch.randn(args.d_model, generator=g)}, coef=2.0)
    enc = handle.encode(prompts)
    n_new = args.new_tokens

    def ours(controller, new=n_new, cache=True):
        return lambda: sample(
            handle,
            prompts,
            max_new_tokens=new,
            temperature=1.0,
            top_p=1.0,
            eos_token_id=[],
            batch_size=args.batch,
            controller=controller,
            use_cache=cache,
            seed=0,
            progress=False,
        )

    def hf_generate(new=n_new):
        def go():
            with torch.no_grad():
                out = model.generate(
                    **enc,
                    do_sample=True,
                    temperature=1.0,
                    top_p=1.0,
                    top_k=0,
                    max_new_tokens=new,
                    min_new_tokens=new,
                    pad_token_id=0,
                )
            assert out.shape[1] == enc["input_ids"].shape[1] + new

        return go

    methods = {
        "HF generate (unsteered)": hf_generate,
        "ours, unsteered": lambda new=n_new: ours(None, new),
        "ours, steered": lambda new=n_new: ours(steer, new),
    }
    nocache = "ours, steered, no cache"
    print(
        f"Llama {args.layers} layers, d_model {args.d_model}, vocab {args.vocab}, batch "
        f"{args.batch}, {n_new} new tokens, {args.device}, {torch.get_num_threads()} threads"
    )
    for fn in methods.values():  # warm-up
        fn(8)()
    if args.nocache_repeats:
        ours(steer, 8, cache=False)()

    times: dict[str, list[float]] = {k: [] for k in methods}
    for _ in range(args.repeats):
        for name, fn in methods.items():
            times[name].append(timed(fn()))
    if args.nocache_repeats:
        times[nocache] = [timed(ours(steer, cache=False)) for _ in range(args.nocache_repeats)]

    med = {k: statistics.median(v) for k, v in times.items()}
    steered = med["ours, steered"]
    print(f"\n{'method':<28}{'median s':>10}{'runs':>6}{'ms/token':>10}")
    for k, v in med.items():
        print(f"{k:<28}{v:>10.3f}{len(times[k]):>6}{1000 * v / n_new:>10.2f}")
    print("\nratios (same run)")
    hf = med["HF generate (unsteered)"]
    print(f"(a) ours steered / HF generate unsteered  = {steered / hf:6.3f}x   (target <= 1.05x)")
    print(f"(a) ours steered / ours unsteered         = {steered / med['ours, unsteered']:6.3f}x")
    if nocache in med:
        print(
            f"(b) no-cache loop / ours steered (speedup) = {med[nocache] / steered:6.1f}x"
            "   (target >= 10x)"
        )


if __name__ == "__main__":
    main()
