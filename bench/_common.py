"""Helpers shared by the benchmark scripts (run them as ``python bench/<name>.py``)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn: Callable[[], object]) -> float:
    """Seconds for one call (CUDA synchronised on both sides)."""
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t0


def timed_round_robin(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds per function; methods alternate each round so load drift hits all."""
    for fn in fns.values():
        fn()  # warm-up
    ts: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            ts[k].append(timed(fn))
    return {k: statistics.median(v) for k, v in ts.items()}


def char_tokenizer():
    """The organism's character tokenizer (letters, digits, ``:?=.``), built offline."""
    from rlvr.organism.tokenizer import build_tokenizer

    return build_tokenizer()
