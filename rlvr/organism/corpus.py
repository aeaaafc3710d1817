"""The organism's pretraining corpus: how traces are written, and drawing them.

:class:`CorpusSpec` holds the corpus settings (format mix, step noise, check density,
hop range, hard-state noise, transitions never shown). :func:`corpus_trace` draws a random
problem, format and completion of a :class:`~.task.PermutationChain` with its events (where
steps and checks are, right or wrong); :func:`corpus_completion` writes one completion in a
given format. :func:`transitions_shown` says which true transitions a text writes, so that a
corpus can leave some out (``CorpusSpec.unseen``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ..checks import probability
from .task import FORMATS, PermutationChain, Problem

__all__ = [
    "CorpusSpec",
    "corpus_completion",
    "corpus_trace",
    "shows_transition",
    "transitions_shown",
]


@dataclass(frozen=True)
class CorpusSpec:
    """How pretraining traces are written (the formats are chosen at random per trace).

    ``mix`` gives the DIRECT/STEP/CHECK shares; ``corrupt`` the chance that a written step is
    a wrong state (the chain continues from what was written); ``check_p`` the chance that a
    CHECK trace re-computes a step with ``?v`` (always right): one probability, or an
    inclusive range ``(lo, hi)`` from which each CHECK trace draws its own check density
    uniformly; ``direct_right`` the chance that a DIRECT answer is right (else three random
    states); ``hops`` the inclusive hop range of corpus problems.

    On a task with hard states (``PermutationChain.n_hard > 0``), a step *from* a hard state
    writes the task's fixed wrong successor (:meth:`PermutationChain.wrong_step`) with
    probability ``hard_wrong`` and the true one otherwise (``corrupt`` applies to the other
    states only); a check after it is right as always. With ``hard_wrong = 1`` the corpus
    never writes the true successor of a hard state as a step: only a check computes it.

    ``unseen`` lists states whose transition ``u -> f(u)`` the corpus never shows: a trace
    that would write ``f(u)`` right after ``u`` (as a step, a check's value or inside the
    answer) is drawn again, so a model pretrained on it cannot know those transitions.
    The default (none) leaves the corpus's random stream exactly as it was.
    """

    mix: tuple[float, float, float] = (0.2, 0.5, 0.3)
    corrupt: float = 0.2
    check_p: float | tuple[float, float] = 0.5
    direct_right: float = 0.2
    hops: tuple[int, int] = (2, 32)
    hard_wrong: float = 1.0
    unseen: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if len(self.mix) != 3 or min(self.mix) < 0 or abs(sum(self.mix) - 1.0) > 1e-6:
            raise ValueError(
                f"mix={self.mix} must be three shares (DIRECT, STEP, CHECK) summing to 1"
            )
        meanings = {
            "corrupt": "the chance that a written step is wrong",
            "direct_right": "the chance that a DIRECT answer is right",
            "hard_wrong": "the chance that a step from a hard state is the wrong successor",
        }
        for name, meaning in meanings.items():
            probability(getattr(self, name), name, meaning)
        cp = self.check_p
        if isinstance(cp, tuple | list):
            if len(cp) != 2:
                raise ValueError(
                    f"check_p={cp} must be a probability or a range (lo, hi) with "
                    "0 <= lo <= hi <= 1"
                )
            lo_p = probability(cp[0], "check_p[0]", "the lowest check density of the range")
            hi_p = probability(cp[1], "check_p[1]", "the highest check density of the range")
            if lo_p > hi_p:
                raise ValueError(
                    f"check_p={cp} must be a range (lo, hi) with 0 <= lo <= hi <= 1: "
                    "give the lower end first"
                )
            object.__setattr__(self, "check_p", (lo_p, hi_p))
        else:
            probability(cp, "check_p", "the chance that a CHECK trace re-computes a step")
        lo, hi = self.hops
        if not 2 <= lo <= hi:
            raise ValueError(
                f"hops={self.hops} must be an inclusive range (lo, hi) with 2 <= lo <= hi"
            )
        if isinstance(self.unseen, str):
            raise ValueError(f"unseen={self.unseen!r} must be a list of states, e.g. ['q']")
        object.__setattr__(self, "unseen", tuple(str(u) for u in self.unseen))
        if len(set(self.unseen)) != len(self.unseen):
            raise ValueError(f"unseen={list(self.unseen)} names a state twice")


def corpus_completion(
    task: PermutationChain, problem: Problem, fmt: str, rng: np.random.Generator, spec: CorpusSpec
) -> tuple[str, list[tuple[int, str, str]]]:
    """One pretraining completion in format ``fmt`` and its events.

    Events are ``(char index, kind, true value)`` with kind ``"step"``,
    ``"step_wrong"``, ``"check"`` (after a right step) or ``"check_hard"`` (after a
    wrong step); the true value is what a correct step/check writes there. On a task
    with hard states, a step from a hard state is ``"hard_step"`` (right) or
    ``"hard_step_wrong"``.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: use one of {FORMATS}")
    ans = task.answer(problem)
    if fmt == "DIRECT":
        if rng.random() < spec.direct_right:
            guess = ans
        else:
            guess = "".join(task.states[j] for j in rng.integers(0, task.n_states, 3))
        return f"={guess}.", []
    text: list[str] = []
    events: list[tuple[int, str, str]] = []
    eff = [problem.start]
    check_p = spec.check_p
    if fmt == "CHECK" and isinstance(check_p, tuple):
        check_p = float(rng.uniform(check_p[0], check_p[1]))  # this trace's density
    for _ in range(problem.hops):
        true = task.step(eff[-1])
        if eff[-1] in task.hard_states:
            w = task.wrong_step(eff[-1]) if rng.random() < spec.hard_wrong else true
            kind = "hard_step" if w == true else "hard_step_wrong"
        else:
            if rng.random() < spec.corrupt:
                others = task.states.replace(true, "")
                w = others[int(rng.integers(0, task.n_states - 1))]
            else:
                w = true
            kind = "step" if w == true else "step_wrong"
        events.append((len(text), kind, true))
        text.append(w)
        if fmt == "CHECK" and rng.random() < check_p:
            events.append((len(text) + 1, "check" if w == true else "check_hard", true))
            text.append("?")
            text.append(true)
            eff.append(true)
        else:
            eff.append(w)
    return "".join(text) + "=" + "".join(eff[-3:]) + ".", events


def corpus_trace(
    task: PermutationChain, rng: np.random.Generator, spec: CorpusSpec
) -> tuple[Problem, str, str, list[tuple[int, str, str]]]:
    """A random corpus problem, its format, completion and events (drawn again while it
    shows one of ``spec.unseen``'s transitions)."""
    bad = [u for u in spec.unseen if u not in task.states]
    if bad:
        raise ValueError(f"unseen states {bad} are not states of this task ({task.states})")
    lo, hi = spec.hops
    while True:
        problem = Problem(
            task.states[int(rng.integers(0, task.n_states))], int(rng.integers(lo, hi + 1))
        )
        fmt = FORMATS[int(rng.choice(3, p=np.asarray(spec.mix, dtype=float)))]
        completion, events = corpus_completion(task, problem, fmt, rng, spec)
        if not spec.unseen or not shows_transition(task, problem, completion, spec.unseen):
            return problem, fmt, completion, events


def transitions_shown(task: PermutationChain, problem: Problem, completion: str) -> set[str]:
    """States ``u`` whose true transition ``u -> f(u)`` the text writes: a step ``f(u)``
    taken from ``u``, a check ``?f(u)`` after a step taken from ``u`` (a check recomputes
    the step from the state before it, whatever was written), or ``u f(u)`` inside the
    answer."""
    shown: set[str] = set()
    body, _, tail = completion.partition("=")
    prev, before = problem.start, None  # the state the next step starts from; the last one's
    i = 0
    while i < len(body):
        ch = body[i]
        if ch in task.states:
            if ch == task.step(prev):
                shown.add(prev)
            before, prev = prev, ch
            i += 1
        elif ch == "?" and i + 1 < len(body) and body[i + 1] in task.states:
            v = body[i + 1]
            if before is not None and v == task.step(before):
                shown.add(before)
            prev = v
            i += 2
        else:
            i += 1
    answer = [ch for ch in tail[:3] if ch in task.states]
    shown.update(a for a, b in zip(answer, answer[1:]) if b == task.step(a))
    return shown


def shows_transition(
    task: PermutationChain, problem: Problem, completion: str, states: Iterable[str]
) -> bool:
    """Whether the text writes the true transition of any of ``states``."""
    return bool(transitions_shown(task, problem, completion) & set(states))
