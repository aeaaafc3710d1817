"""The settings that decide what a sampler draws, in one frozen, validated record.

:class:`SamplingParams` holds ``n``, ``temperature``, ``top_p``, ``max_new_tokens``,
``stop`` and ``seed``: what :func:`rlvr.generation.sampling.sample`, the hybrid decoder's
``generate`` and :func:`rlvr.generation.sampling_vllm.sample_vllm` take either as ``params=`` or as
loose keywords (not both). Bad values are refused when the record is made, before any
model runs. ``to_dict()`` is what a result records as its provenance (it is
``Samples.params``).

Not in it: how the prompts and the model are read (``tokenizer``, ``eos_token_id``,
``add_special_tokens``) and how the work is done (``batch_size``, ``use_cache``,
``progress``), which do not change what is drawn or belong to the model.

This module imports no torch, so config validation can use it.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

__all__ = ["UNSET", "SamplingParams", "resolve_params"]


class _Unset:
    """The default of a loose sampling keyword: "not given" (``SamplingParams``' default)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<SamplingParams default>"


UNSET: Any = _Unset()


def _int(name: str, value: Any, *, positive: bool) -> int:
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not ok or (positive and value < 1):
        what = "a positive int" if positive else "an int"
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return int(value)


def _real(name: str, value: Any, rule: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number {rule}, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class SamplingParams:
    """What to draw: ``n`` samples per prompt at ``temperature`` (0 = greedy) within the
    top-``p`` nucleus, at most ``max_new_tokens`` each, ending at any ``stop`` string,
    with the uniform numbers of ``seed``.

    ``stop`` may be given as one string or any sequence of them; it is kept as a tuple.
    """

    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 64
    stop: tuple[str, ...] = ()
    seed: int = 0

    def __post_init__(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        put("n", _int("n", self.n, positive=True))
        put("max_new_tokens", _int("max_new_tokens", self.max_new_tokens, positive=True))
        put("seed", _int("seed", self.seed, positive=False))
        t = _real("temperature", self.temperature, ">= 0 (0 = greedy)")
        if not 0 <= t < math.inf:  # NaN fails every comparison
            raise ValueError(f"temperature must be finite and >= 0 (0 = greedy), got {t}")
        put("temperature", t)
        p = _real("top_p", self.top_p, "in (0, 1]")
        if not 0 < p <= 1:
            raise ValueError(f"top_p must be in (0, 1] (1 = no nucleus cut), got {p}")
        put("top_p", p)
        stop = self.stop
        if isinstance(stop, str):
            stop = (stop,)
        elif isinstance(stop, Mapping) or not hasattr(stop, "__iter__"):
            raise ValueError(f"stop must be a string or a list of strings, got {stop!r}")
        stop = tuple(stop)
        if any(not isinstance(s, str) or not s for s in stop):
            raise ValueError(f"stop strings must be non-empty strings, got {list(stop)!r}")
        put("stop", stop)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings (``stop`` as a list), e.g. for a result's provenance."""
        return {f.name: getattr(self, f.name) for f in fields(self)} | {"stop": list(self.stop)}

    def replace(self, **changes: Any) -> SamplingParams:
        """A copy with ``changes`` (validated again), e.g. ``params.replace(temperature=0)``."""
        return replace(self, **changes)


def resolve_params(
    params: SamplingParams | None,
    defaults: Mapping[str, Any] | None = None,
    **keywords: Any,
) -> SamplingParams:
    """The settings of one call: ``params``, or the loose ``keywords`` that were given
    (those left at :data:`UNSET` take ``defaults``, else the dataclass defaults).

    Both at once is refused: which would win is not obvious.
    """
    given = {k: v for k, v in keywords.items() if v is not UNSET}
    if params is None:
        return SamplingParams(**{**(defaults or {}), **given})
    if not isinstance(params, SamplingParams):
        raise TypeError(
            f"params must be a SamplingParams, got a {type(params).__name__}: "
            "params=SamplingParams(n=..., temperature=...)"
        )
    if given:
        names = sorted(given)
        raise TypeError(
            f"sampling settings given both as params= and as keywords ({', '.join(names)}): "
            f"give one or the other (params.replace({names[0]}=...) changes one setting)"
        )
    return params
