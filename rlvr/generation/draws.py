"""How the loop draws a token: counter-based uniforms, temperature, top-p, greedy.

``temperature=0`` is greedy (ties go to the lowest token id). Otherwise tokens are drawn
by inverse-CDF sampling from ``softmax(logits / temperature)`` (restricted to the top-``p``
nucleus when ``top_p < 1``) with one uniform number per (prompt, sample, step), computed by
a counter-based hash of ``(seed, i, j, t)``: :func:`row_keys` gives each (prompt, sample)
row its key, :func:`step_uniform` its number at a step, :func:`choose_tokens` the token.
So the numbers do not depend on ``batch_size``, on which other rows share a batch, or on
``n`` (sample ``j`` of prompt ``i`` always gets the same ones). The hybrid decoder draws
its redraws and the router model's tokens with the same functions, so a handed-off token
uses the uniform the loop would have used. What this guarantees across batch shapes is
stated in :mod:`rlvr.generation.sampling`.
"""

from __future__ import annotations

import torch

__all__ = ["choose_tokens", "row_keys", "step_uniform"]

_M32 = 0xFFFFFFFF


def _mul32(x: torch.Tensor, c: int) -> torch.Tensor:
    """``x * c mod 2**32`` for int64 ``x`` in [0, 2**32) without overflowing int64."""
    lo, hi = c & 0xFFFF, c >> 16
    return (x * lo + (((x * hi) & 0xFFFF) << 16)) & _M32


def _hash32(x: torch.Tensor) -> torch.Tensor:
    """lowbias32 (C. Wellons): a well-mixed 32-bit integer hash, elementwise."""
    x = x & _M32
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def _hash32_int(x: int) -> int:
    """:func:`_hash32` of one Python int (the same bits)."""
    x &= _M32
    x ^= x >> 16
    x = (x * 0x7FEB352D) & _M32
    x ^= x >> 15
    x = (x * 0x846CA68B) & _M32
    return x ^ (x >> 16)


def row_keys(seed: int, prompt_index: torch.Tensor, sample_index: torch.Tensor) -> torch.Tensor:
    """One 32-bit key per (prompt, sample) row for ``seed`` (int64 tensor, like the indices)."""
    s = torch.tensor([(seed & _M32) ^ ((seed >> 32) * 0x9E3779B9 & _M32)], dtype=torch.long)
    k = _hash32(_hash32(s.to(prompt_index.device)) ^ prompt_index.long())
    return _hash32(k ^ _hash32(sample_index.long() + 0x68E31DA4))


def step_uniform(keys: torch.Tensor, step: int) -> torch.Tensor:
    """One float32 in (0, 1) per row key for this step (23 bits, exact)."""
    h = _hash32(keys ^ _hash32_int(step + 0x1B56C4E9))  # the step's hash: one number
    return ((h >> 9).float() + 0.5) / float(1 << 23)


def choose_tokens(
    logits: torch.Tensor,
    temperature: float,
    top_p: float,
    u: torch.Tensor | None,
    allowed: torch.Tensor | None = None,
) -> torch.Tensor:
    """Greedy, or inverse-CDF sampling with one uniform ``u`` per row (greedy needs none:
    ``u`` may be None at ``temperature=0``).

    ``allowed`` (bool, like ``logits``) restricts the choice to those tokens: the
    distribution is renormalised over them (each row needs at least one).
    """
    if not torch.isfinite(logits).all():
        raise ValueError(
            "non-finite logits (NaN/inf): the model or its dtype overflowed; load it in "
            "float32 or check the weights"
        )
    if allowed is not None:
        if not bool(allowed.any(-1).all()):
            raise ValueError("allowed leaves a row without any token to choose")
        logits = logits.masked_fill(~allowed, float("-inf"))
    if temperature == 0:
        return logits.argmax(-1)
    scaled = logits / temperature
    if bool(torch.isposinf(scaled).any()):
        raise ValueError(
            f"temperature {temperature!r} is so small that logits / temperature overflow: "
            "use temperature=0 for greedy decoding"
        )
    probs = torch.softmax(scaled, dim=-1)
    vocab = probs.shape[-1]
    if top_p < 1.0:
        sp, order = probs.sort(-1, descending=True)
        keep = (sp.cumsum(-1) - sp) < top_p  # the most likely token is always kept
        cdf = (sp * keep).cumsum(-1)
        k = torch.searchsorted(cdf, (u * cdf[:, -1])[:, None], right=True)
        k = torch.minimum(k, keep.sum(-1, keepdim=True) - 1)
        return order.gather(1, k).squeeze(1)
    cdf = probs.cumsum(-1)
    k = torch.searchsorted(cdf, (u * cdf[:, -1])[:, None], right=True).clamp(max=vocab - 1)
    return k.squeeze(1)
