"""Reward functions for GRPO on the organism: the verifier and three spurious rewards.

Each reward maps ``(problem, completion)`` to 0.0 or 1.0; the spurious ones follow Shao et
al. (arXiv 2506.10947) on this task:

``verify``     the task's verifier (the true reward).
``random``     Bernoulli(0.5), independent of the completion (from the run's own seed).
``format``     1.0 for a well-formed ``=xyz.`` within the problem's budget, right or wrong.
``incorrect``  1.0 for a well-formed answer within budget that is *wrong* (the true reward
               of a finished answer, inverted).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

from .task import PermutationChain, Problem

__all__ = ["REWARDS", "make_reward"]

REWARDS = ("verify", "random", "format", "incorrect")
_FINISHED = re.compile(r"[A-Za-z?]*=[A-Za-z]{3}\.")


def _finished(task: PermutationChain, problem: Problem, completion: str) -> bool:
    m = _FINISHED.match(completion)
    return m is not None and m.end() <= task.budget_of(problem)


def make_reward(
    name: str, task: PermutationChain, seed: int = 0
) -> Callable[[Problem, str], float]:
    """The reward called ``name`` (one of :data:`REWARDS`) on ``task``."""
    if name == "verify":
        return task.verify
    if name == "random":
        rng = np.random.default_rng([seed, 2506])

        def random(problem: Problem, completion: str) -> float:
            return float(rng.random() < 0.5)

        return random
    if name == "format":
        return lambda p, c: float(_finished(task, p, c))
    if name == "incorrect":
        return lambda p, c: float(_finished(task, p, c) and task.verify(p, c) == 0.0)
    raise ValueError(f"unknown reward {name!r}: use one of {', '.join(REWARDS)}")
