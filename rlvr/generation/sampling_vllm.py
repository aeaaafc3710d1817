"""Optional vLLM backend for large pass@k runs (n = 256 on real models, on a GPU).

Same inputs and the same :class:`rlvr.generation.sampling.Samples` record as :func:`rlvr.generation.sampling.sample`,
so pass@k code does not care which produced it. It cannot run controllers (no steering,
no hybrid): use the HF loop for those. vLLM is imported only when this is called; install
it with ``pip install 'rsteer[vllm]'`` on a CUDA machine.

    from rlvr.generation.sampling_vllm import sample_vllm
    out = sample_vllm("Qwen/Qwen2.5-Math-1.5B", prompts, n=256, temperature=0.6, top_p=0.95,
                      max_new_tokens=4096, seed=0)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .sampling import Samples
from .sampling_params import UNSET, SamplingParams, resolve_params


def _import_vllm():
    try:
        import vllm
    except ImportError as e:
        raise ImportError(
            "the vLLM sampling backend needs vllm: pip install 'rsteer[vllm]' on a CUDA "
            "machine, or use the default HF sampler (sampling.backend = 'hf')"
        ) from e
    return vllm


def sample_vllm(
    model: str,
    prompts: Sequence[str],
    *,
    params: SamplingParams | None = None,
    n: int = UNSET,
    temperature: float = UNSET,
    top_p: float = UNSET,
    max_new_tokens: int = UNSET,
    stop: Sequence[str] | str = UNSET,
    seed: int = UNSET,
    llm: Any = None,
    **llm_kwargs: Any,
) -> Samples:
    """Sample ``n`` completions per prompt with vLLM. ``llm`` reuses a loaded ``vllm.LLM``.

    The sampling settings are ``params=SamplingParams(...)`` or the loose keywords, not
    both, as for :func:`rlvr.generation.sampling.sample`.
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
    if isinstance(prompts, str):
        prompts = [prompts]
    if not prompts:
        raise ValueError("no prompts given")
    vllm = _import_vllm()
    if llm is None:
        llm = vllm.LLM(model=model, seed=p.seed, **llm_kwargs)
    vllm_params = vllm.SamplingParams(
        n=p.n,
        temperature=p.temperature,
        top_p=p.top_p,
        max_tokens=p.max_new_tokens,
        stop=list(p.stop),
        seed=p.seed,
        logprobs=0,
    )
    outs = llm.generate(list(prompts), vllm_params)
    prompt_index, sample_index, token_ids, texts, logprobs, finish = [], [], [], [], [], []
    for i, o in enumerate(outs):
        for j, c in enumerate(o.outputs):
            prompt_index.append(i)
            sample_index.append(j)
            token_ids.append(list(c.token_ids))
            texts.append(c.text)
            lp = []
            for tok, d in zip(c.token_ids, c.logprobs or []):
                entry = d.get(tok) if isinstance(d, dict) else None
                lp.append(float(entry.logprob) if entry is not None else float("nan"))
            logprobs.append(lp)
            finish.append(finish_reason(c.finish_reason, getattr(c, "stop_reason", None)))
    return Samples(
        list(prompts),
        p.n,
        prompt_index,
        sample_index,
        token_ids,
        texts,
        logprobs,
        finish,
        [{} for _ in texts],
        {"backend": "vllm", **p.to_dict()},
    )


def finish_reason(vllm_finish: str | None, stop_reason: str | int | None) -> str:
    """vLLM's ``(finish_reason, stop_reason)`` in :func:`sample`'s words.

    vLLM says ``"stop"`` for a stop string, a stop token and the eos token alike; its
    ``stop_reason`` is the matched stop string, the matched token id, or None for eos. A
    string is :func:`sample`'s ``"stop"``; a stop token id or eos is its ``"eos"``.
    """
    if vllm_finish == "length":
        return "length"
    return "stop" if isinstance(stop_reason, str) else "eos"
