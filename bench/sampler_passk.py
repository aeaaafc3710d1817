"""The sampler against Hugging Face ``generate`` on the organism's pass@k workload.

The shipped organism's base model (``data/organism-sharpening/base``: Llama, 2 layers,
d_model 128, its character vocabulary) samples what the default study's ``passk`` stage
samples (``data/experiments/organism.toml``): the first 64 test problems of each class, 64
samples each at temperature 1, top-p 1, batches of 1024 rows (16 problems of one class),
the task's budget (62 tokens), stopping at the eos token (so rows finish at different
steps).
Methods, measured in the same run, alternating each round (median of repeats after a
warm-up):

- ``HF generate``: ``model.generate`` on the same rows (each prompt repeated ``n`` times),
  ``do_sample``, the same budget and eos (the baseline);
- ``sample``: :func:`rlvr.generation.sampling.sample` through the model handle, as the study calls it
  (``use_cache=True``: the KV cache for this length, :data:`rlvr.generation.forward.STATIC_FROM`);
- ``sample, static`` / ``sample, dynamic``: the same with each KV cache named (the same
  tokens; where each is faster decides the rule).

All decode the rows of one batch together; ``generate`` keeps every row to the end of its
batch, the sampler drops finished rows. Target: the sampler >= 3x faster than ``generate``.

What bounds the ratio is printed beside it, measured in the same run: the row-steps each
method decodes (a row-step: one row through one forward), and the seconds the sampler
spends inside the model's forwards (median over ``--repeats`` further runs).
``generate`` / those seconds is the most any loop around these forwards could reach: a
loop with no cost of its own.

    python bench/sampler_passk.py [--problems 64] [--n 64] [--batch 1024] [--repeats 3]
                                  [--threads 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import forward_seconds, timed, timed_round_robin  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--organism", default=os.path.join(ROOT, "data", "organism-sharpening"))
    ap.add_argument(
        "--problems", type=int, default=64, help="per class (main, long); the study: 64"
    )
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    import probes
    from rlvr.generation.sampling import sample
    from rlvr.organism.store import checkpoint, load_splits, load_task

    task = load_task(args.organism)
    problems = [
        p
        for cls in ("main", "long")
        for p in load_splits("test", cls, organism_dir=args.organism)[: args.problems]
    ]
    prompts = [task.prompt(p) for p in problems]
    handle = probes.wrap(checkpoint("base", args.organism), device=args.device)
    model, tok = handle.model, handle.tokenizer
    budget = task.budget
    kw = dict(
        n=args.n,
        temperature=1.0,
        top_p=1.0,
        max_new_tokens=budget,
        seed=0,
        batch_size=args.batch,
        progress=False,
    )
    rows = [p for p in prompts for _ in range(args.n)]

    def ours(cache=True):
        return lambda: sample(handle, prompts, use_cache=cache, **kw)

    generate_row_steps = [0]

    def hf_generate():
        generate_row_steps[0] = 0
        with torch.no_grad():
            for s in range(0, len(rows), args.batch):
                enc = tok(rows[s : s + args.batch], return_tensors="pt", padding=True)
                out = model.generate(
                    **enc.to(args.device),
                    do_sample=True,
                    temperature=1.0,
                    top_p=1.0,
                    top_k=0,
                    max_new_tokens=budget,
                    eos_token_id=tok.eos_token_id,
                    pad_token_id=tok.pad_token_id,
                )
                width = enc["input_ids"].shape
                generate_row_steps[0] += width[0] * (out.shape[1] - width[1])

    import rlvr.generation.forward

    # a checkout from before the cache choice (for before/after runs) has one cache only
    kinds = getattr(rlvr.generation.forward, "CACHE_KINDS", ())
    row_steps = []
    out = sample(
        handle, prompts, callback=lambda t, ctx: row_steps.append(ctx.input_ids.shape[0]), **kw
    )
    same = all(ours(k)().token_ids == out.token_ids for k in kinds)
    lengths = [len(t) for t in out.token_ids]
    print(
        f"organism base ({args.organism}) on {args.device}, {len(prompts)} problems x n "
        f"{args.n} = {len(rows)} rows, batch {args.batch}, budget {budget}, "
        f"{torch.get_num_threads()} thread(s), median of {args.repeats}; "
        f"tokens per row: mean {sum(lengths) / len(lengths):.1f}, max {max(lengths)}"
    )
    print(f"the caches {kinds} give the same tokens: {same}")
    if hasattr(os, "getloadavg"):
        print(f"load average before: {os.getloadavg()[0]:.2f}")
    fns = {"HF generate": hf_generate, "sample": ours(), **{f"sample, {k}": ours(k) for k in kinds}}
    t = timed_round_robin(fns, args.repeats)
    if hasattr(os, "getloadavg"):
        print(f"load average after:  {os.getloadavg()[0]:.2f}")
    for k, v in t.items():
        print(f"{k:16s} {v:7.3f} s  HF generate / this {t['HF generate'] / v:5.2f}x")
    ratio = t["HF generate"] / t["sample"]
    print(f"target: sample >= 3x faster than HF generate -> {ratio:.2f}x")
    walls, inside = [], []
    for _ in range(args.repeats):
        with forward_seconds(handle) as fwd:
            walls.append(timed(ours()))
        inside.append(fwd["seconds"])
    wall, fwd_s = statistics.median(walls), statistics.median(inside)
    ideal = sum(lengths)
    print(
        f"row-steps: HF generate {generate_row_steps[0]}, sample {sum(row_steps)} "
        f"(each row's own tokens: {ideal}); generate / sample "
        f"{generate_row_steps[0] / sum(row_steps):.2f}x"
    )
    print(
        f"the sampler inside the model's forwards: {fwd_s:.3f} s of {wall:.3f} s "
        f"({fwd_s / wall:.0%}); the loop's own work {wall - fwd_s:.3f} s"
    )
    print(
        f"bound: HF generate / the sampler's forwards alone = "
        f"{t['HF generate'] / fwd_s:.2f}x (a loop that cost nothing would reach this)"
    )
    if kinds:
        print(f"static / dynamic cache: {t['sample, static'] / t['sample, dynamic']:.2f}x")


if __name__ == "__main__":
    main()
