"""Sampling organism completions through the project's one generation loop.

:func:`sample_completions` calls :func:`rlvr.generation.sampling.sample` with the task's stop string
``.`` and budget, and gives each completion back with its closing ``.`` (the sampler cuts
texts before a stop string; the verifier wants the ``.``, which marks a finished answer).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..generation.sampling import sample
from .task import PermutationChain, Problem

__all__ = ["sample_completions"]


def sample_completions(
    model: Any,
    task: PermutationChain,
    problems: Sequence[Problem],
    n: int,
    *,
    tokenizer: Any = None,
    temperature: float = 1.0,
    top_p: float = 1.0,
    max_new_tokens: int | None = None,
    seed: int = 0,
    batch_size: int = 512,
    progress: bool = False,
) -> list[list[str]]:
    """``n`` completions per problem (``result[i][j]``), each ending at its first ``.``.

    ``model`` is a handle or a HF causal LM; a HF model without ``tokenizer`` gets the
    organism's character tokenizer. ``max_new_tokens`` defaults to the task's budget (the
    one RL trained with); ``temperature=0`` is greedy; the same seed gives the same samples
    whatever the batch size.
    """
    if n < 1:
        raise ValueError(f"n={n} must be >= 1")
    if not problems:
        return []
    if tokenizer is None and not hasattr(model, "tokenizer"):
        from .tokenizer import build_tokenizer

        tokenizer = build_tokenizer()
    budget = task.budget if max_new_tokens is None else int(max_new_tokens)
    out = sample(
        model,
        [task.prompt(p) for p in problems],
        tokenizer=tokenizer,
        n=n,
        temperature=temperature,
        top_p=top_p,
        max_new_tokens=budget,
        stop=["."],
        seed=seed,
        batch_size=batch_size,
        progress=progress,
    )
    texts = [t + "." if r == "stop" else t for t, r in zip(out.texts, out.finish_reasons)]
    grouped: list[list[str]] = [[] for _ in problems]
    for i, t in zip(out.prompt_index, texts):
        grouped[i].append(t)
    return grouped
