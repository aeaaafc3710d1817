"""Helpers shared by the benchmark scripts (run them as ``python bench/<name>.py``)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

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


@contextmanager
def forward_seconds(*handles) -> Iterator[dict[str, float]]:
    """Time spent inside the handles' ``run`` (the model forwards) while the block runs:
    yields ``{"seconds": ..., "calls": ...}``, summed over all of them, filled as it runs.

    Each handle's ``run`` is shadowed by a timing wrapper on the instance (the class is
    untouched) and the instance is restored on exit; what the block does outside those
    calls is the loop's own work.
    """
    total = {"seconds": 0.0, "calls": 0}
    if any("run" in vars(h) for h in handles):
        raise ValueError("a handle already has its run shadowed: nest no timers")
    for h in handles:

        def run(*args, _inner=h.run, **kwargs):
            sync()
            t0 = time.perf_counter()
            try:
                return _inner(*args, **kwargs)
            finally:
                sync()
                total["seconds"] += time.perf_counter() - t0
                total["calls"] += 1

        h.run = run
    try:
        yield total
    finally:
        for h in handles:
            vars(h).pop("run", None)


def char_tokenizer():
    """The organism's character tokenizer (letters, digits, ``:?=.``), built offline."""
    from rlvr.organism.tokenizer import build_tokenizer

    return build_tokenizer()
