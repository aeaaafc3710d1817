"""The organism's verifiable task: follow a secret permutation for k hops.

Over 400 lines: :class:`PermutationChain` is one class, and its methods (the rule,
problems, verifier, spans, schedule, judging traces) are the interface callers use on a task.

There are ``n_states`` states, each one character (``a``-``z`` then ``A``-``Z``), and one
fixed secret permutation ``f`` (a single cycle drawn from the task seed, so a chain never
repeats within ``n_states`` hops). A problem is a start state ``s0`` and a hop count ``k``;
its prompt is ``"{s0}{k:02d}:"`` and its answer is the last three states of the true chain
``s_{k-2} s_{k-1} s_k`` with ``s_i = f(s_{i-1})``. A completion ends with ``=xyz.``; the
verifier rewards it 1.0 when ``xyz`` is the answer and the ``.`` lies within the task's
completion budget (``budget`` characters = tokens), else 0.0.

Three solution formats exist in the pretraining corpus (:mod:`.corpus` writes it):

``DIRECT``  ``=xyz.`` at once (a guess).
``STEP``    every state written in turn (``bcd...``), then ``=`` and the last three.
``CHECK``   like STEP, but after some steps ``?v`` re-computes the step from the state before
            it (``v = f(previous state)``); the chain continues from ``v``.

Strategy segments are labelled exactly (character spans): ``step`` (one written state),
``stepwise`` (the first written state: the decision to work step by step, the counterpart
of ``direct``), ``check`` (``?v``), ``answer`` (``=xyz`` after a body) and ``direct``
(``=xyz`` as the whole completion). :meth:`PermutationChain.segment_start` is the one definition of "the
next token begins a segment of strategy X" shared by extraction and routing.

Problem files (JSONL) are read and written by :mod:`.problem_files`.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "ALPHABET",
    "FORMATS",
    "SEGMENT_LABELS",
    "Problem",
    "PermutationChain",
    "Segment",
    "TraceStats",
]

ALPHABET = string.ascii_lowercase + string.ascii_uppercase
FORMATS = ("DIRECT", "STEP", "CHECK")
SEGMENT_LABELS = ("stepwise", "step", "check", "answer", "direct")
OTHER = "OTHER"
_ANSWER_RE = re.compile(r"([A-Za-z?]*)=([A-Za-z]{3})\.")


class Segment(NamedTuple):
    """A labelled character range ``[start, end)`` (same fields as ``probes.spans.Span``)."""

    start: int
    end: int
    label: str


@dataclass(frozen=True)
class Problem:
    """One problem: start state, hop count and the class it was drawn for."""

    start: str
    hops: int
    cls: str = "main"

    @property
    def uid(self) -> str:
        return f"{self.start}{self.hops:02d}"

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "hops": self.hops, "cls": self.cls}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Problem:
        missing = [key for key in ("start", "hops") if key not in d]
        if missing:
            raise ValueError(f"problem record {dict(d)!r} lacks {missing}: write start and hops")
        return cls(str(d["start"]), int(d["hops"]), str(d.get("cls", "main")))


@dataclass
class TraceStats:
    """What a completion did, step by step, judged against the true permutation.

    A step is right when it equals ``f`` of the state before it (the chain as written,
    checks included); a check is right when its value equals ``f`` of the state before the
    step it follows. Hard checks follow a wrong step: copying the written value fails them.
    ``chain_right``: the effective chain (checks applied) is the true chain of exactly ``k``
    hops and the answer holds its last three states. ``correct`` is the task's reward.
    """

    format: str
    steps: int = 0
    steps_right: int = 0
    checks: int = 0
    checks_right: int = 0
    hard_checks: int = 0
    hard_checks_right: int = 0
    checks_after_wrong: int = 0
    wrong_steps: int = 0
    checks_after_right: int = 0
    hops_written: int = 0
    stopped_right: bool = False
    answer_consistent: bool = False
    chain_right: bool = False
    finished: bool = False
    length: int = 0
    correct: bool = False


@dataclass(frozen=True)
class PermutationChain:
    """The permutation-chain task: problems, prompts, verifier, formats and spans.

    ``classes`` maps a class name to its inclusive hop range; ``budget`` is the completion
    budget in tokens (one token per character) that sampling and RL share: a completion
    whose final ``.`` lies beyond it earns no reward.

    Three optional settings make the task one whose answer is *when* to check (their
    defaults give the first organism's task exactly):

    ``n_hard``       states drawn from the seed whose step the corpus gets wrong (see
                     :class:`.corpus.CorpusSpec` ``hard_wrong``); each has a fixed wrong
                     successor, :meth:`wrong_step`.
    ``check_slack``  a per-problem budget (:meth:`budget_of`): ``k + 2 (h + slack) + 5``
                     tokens, ``h`` = hard states among ``s_0 .. s_(k-1)`` of the true chain,
                     so checking exactly after the hard steps always fits and checking
                     after every step never does (when ``k > h + slack``).
    ``strict``       the reward also requires the whole effective chain (checks applied) to
                     be the true chain: wrong steps that cancel out earn nothing.
    """

    n_states: int = 52
    seed: int = 0
    budget: int = 62
    classes: Mapping[str, tuple[int, int]] = field(
        default_factory=lambda: {"main": (12, 19), "long": (26, 32)}
    )
    n_hard: int = 0
    check_slack: int | None = None
    strict: bool = False

    def __post_init__(self) -> None:
        if not 4 <= self.n_states <= len(ALPHABET):
            raise ValueError(
                f"n_states={self.n_states} must lie in [4, {len(ALPHABET)}]: states are letters"
            )
        if self.budget < 5:
            raise ValueError(f"budget={self.budget} is too small: a completion needs >= 5 tokens")
        for name, rng in self.classes.items():
            lo, hi = rng
            if not 2 <= lo <= hi <= 99:
                raise ValueError(
                    f"class {name!r} has hops {rng}: give an inclusive range with 2 <= lo <= hi <= 99"
                )
        object.__setattr__(
            self, "classes", {k: (int(v[0]), int(v[1])) for k, v in self.classes.items()}
        )
        order = np.random.default_rng(self.seed).permutation(self.n_states)
        succ = [0] * self.n_states
        for i in range(self.n_states):
            succ[order[i]] = order[(i + 1) % self.n_states]
        object.__setattr__(self, "_succ", "".join(ALPHABET[j] for j in succ))
        if not 0 <= self.n_hard <= self.n_states // 2:
            raise ValueError(
                f"n_hard={self.n_hard} must lie in [0, n_states // 2 = {self.n_states // 2}]"
            )
        if self.check_slack is not None and self.check_slack < 0:
            raise ValueError(f"check_slack={self.check_slack} must be >= 0 (or None: no limit)")
        # hard states and their wrong successors come from a generator of their own, so the
        # permutation of a seed is the same with or without hard states
        hrng = np.random.default_rng([self.seed, 1])
        hard = sorted(int(j) for j in hrng.choice(self.n_states, self.n_hard, replace=False))
        wrong = {}
        for j in hard:
            s = ALPHABET[j]
            others = [t for t in self.states if t not in (s, self._succ[j])]
            wrong[s] = others[int(hrng.integers(0, len(others)))]
        object.__setattr__(self, "_hard", "".join(ALPHABET[j] for j in hard))
        object.__setattr__(self, "_wrong", wrong)

    # ------------------------------------------------------------------ the rule

    @property
    def states(self) -> str:
        return ALPHABET[: self.n_states]

    def step(self, state: str) -> str:
        """``f(state)``: the state one hop after ``state``."""
        i = self.states.find(state)
        if len(state) != 1 or i < 0:
            raise ValueError(f"{state!r} is not a state of this task: use one of {self.states!r}")
        return self._succ[i]  # type: ignore[attr-defined]

    @property
    def hard_states(self) -> str:
        """The states whose step the corpus gets wrong (empty unless ``n_hard > 0``)."""
        return self._hard  # type: ignore[attr-defined]

    def wrong_step(self, state: str) -> str:
        """The fixed wrong successor the corpus writes after hard state ``state``."""
        if state not in self.hard_states or len(state) != 1:
            raise ValueError(f"{state!r} is not a hard state: use one of {self.hard_states!r}")
        return self._wrong[state]  # type: ignore[attr-defined]

    def n_hard_steps(self, problem: Problem) -> int:
        """``h``: hard states among ``s_0 .. s_(k-1)`` of the true chain (the steps taken
        from a hard state)."""
        return sum(s in self.hard_states for s in self.chain(problem)[:-1])

    def budget_of(self, problem: Problem) -> int:
        """The completion budget of ``problem``: ``budget``, or with ``check_slack`` the
        smaller of it and ``k + 2 (h + check_slack) + 5``."""
        if self.check_slack is None:
            return self.budget
        own = problem.hops + 2 * (self.n_hard_steps(problem) + self.check_slack) + 5
        return min(self.budget, own)

    def chain(self, problem: Problem) -> str:
        """``s0 s1 ... sk`` of the true chain."""
        out = [problem.start]
        for _ in range(problem.hops):
            out.append(self.step(out[-1]))
        return "".join(out)

    def answer(self, problem: Problem) -> str:
        return self.chain(problem)[-3:]

    def crosses(self, problem: Problem, states: Iterable[str]) -> bool:
        """Whether the true chain of ``problem`` steps from one of ``states``."""
        chain = self.chain(problem)
        return any(s in set(states) for s in chain[:-1])

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "n_states": self.n_states,
            "seed": self.seed,
            "budget": self.budget,
            "classes": {k: list(v) for k, v in self.classes.items()},
        }
        # the optional settings appear only when set, so the first organism's dict is unchanged
        if self.n_hard:
            out["n_hard"] = self.n_hard
        if self.check_slack is not None:
            out["check_slack"] = self.check_slack
        if self.strict:
            out["strict"] = True
        return out

    _KEYS = ("n_states", "seed", "budget", "classes", "n_hard", "check_slack", "strict")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PermutationChain:
        unknown = set(d) - set(cls._KEYS)
        if unknown:
            raise ValueError(f"[task] has unknown keys {sorted(unknown)}: use {list(cls._KEYS)}")
        slack = d.get("check_slack")
        return cls(
            n_states=int(d.get("n_states", 52)),
            seed=int(d.get("seed", 0)),
            budget=int(d.get("budget", 62)),
            classes={k: (int(v[0]), int(v[1])) for k, v in dict(d.get("classes", {})).items()}
            or {"main": (12, 19), "long": (26, 32)},
            n_hard=int(d.get("n_hard", 0)),
            check_slack=None if slack is None else int(slack),
            strict=bool(d.get("strict", False)),
        )

    # ------------------------------------------------------------------ problems

    def _check_problem(self, problem: Problem) -> None:
        if problem.start not in self.states or len(problem.start) != 1:
            raise ValueError(f"problem start {problem.start!r} is not a state of this task")
        if not 2 <= problem.hops <= 99:
            raise ValueError(f"problem hops={problem.hops} must lie in [2, 99]")

    def hop_range(self, cls: str) -> tuple[int, int]:
        if cls not in self.classes:
            raise ValueError(f"unknown class {cls!r}: use one of {sorted(self.classes)}")
        return self.classes[cls]

    def all_problems(self, cls: str) -> list[Problem]:
        """Every distinct problem of a class, in a fixed order."""
        lo, hi = self.hop_range(cls)
        return [Problem(s, k, cls) for k in range(lo, hi + 1) for s in self.states]

    def sample_problems(
        self, n: int, seed: int, hops: tuple[int, int] | None = None, cls: str = "main"
    ) -> list[Problem]:
        """``n`` random problems (with replacement) with hops in ``hops`` (default: the class)."""
        lo, hi = hops if hops is not None else self.hop_range(cls)
        if not 2 <= lo <= hi <= 99:
            raise ValueError(f"hops={(lo, hi)} must be an inclusive range with 2 <= lo <= hi <= 99")
        rng = np.random.default_rng(seed)
        starts = rng.integers(0, self.n_states, size=n)
        ks = rng.integers(lo, hi + 1, size=n)
        return [Problem(self.states[s], int(k), cls) for s, k in zip(starts, ks)]

    def splits(self, seed: int, sizes: Mapping[str, Mapping[str, int]]) -> dict[str, list[Problem]]:
        """Disjoint train/dev/test splits: ``sizes[cls] = {"test": 200, "dev": 32}``; the rest
        of each class goes to ``train`` when ``sizes[cls]["train"]`` is -1 (or up to that many).
        """
        out: dict[str, list[Problem]] = {"train": [], "dev": [], "test": []}
        for i, cls in enumerate(sorted(sizes)):
            pool = self.all_problems(cls)
            order = np.random.default_rng([seed, i]).permutation(len(pool))
            want = dict(sizes[cls])
            bad = set(want) - set(out)
            if bad:
                raise ValueError(f"unknown split names {sorted(bad)}: use train, dev, test")
            fixed = sum(v for k, v in want.items() if k != "train" or v >= 0)
            if fixed > len(pool):
                raise ValueError(
                    f"class {cls!r} has {len(pool)} distinct problems but the splits ask for "
                    f"{fixed}: widen its hop range or shrink the splits"
                )
            pos = 0
            for name in ("test", "dev", "train"):
                count = want.get(name, 0)
                if count < 0:
                    count = len(pool) - pos
                out[name].extend(pool[j] for j in order[pos : pos + count])
                pos += count
        return out

    # ------------------------------------------------------------------ text

    def prompt(self, problem: Problem) -> str:
        self._check_problem(problem)
        return f"{problem.start}{problem.hops:02d}:"

    def parse_prompt(self, prompt: str) -> Problem:
        m = re.fullmatch(r"([A-Za-z])(\d\d):", prompt)
        if not m or m.group(1) not in self.states:
            raise ValueError(f"{prompt!r} is not a prompt of this task: expected e.g. 'a12:'")
        return Problem(m.group(1), int(m.group(2)))

    def verify(self, problem: Problem, completion: str, *, strict: bool | None = None) -> float:
        """1.0 when the completion's ``=xyz.`` holds the answer within the problem's budget
        (:meth:`budget_of`), else 0.0. With ``strict`` (default: the task's setting), the
        effective chain must also be the true chain (see :attr:`TraceStats.chain_right`)."""
        strict = self.strict if strict is None else strict
        m = _ANSWER_RE.match(completion)
        if m is None or m.end() > self.budget_of(problem):
            return 0.0
        if m.group(2) != self.answer(problem):
            return 0.0
        if strict and not self.chain_right(problem, m.group(1)):
            return 0.0
        return 1.0

    def _effective(self, problem: Problem, body: str) -> tuple[list[str], int]:
        """The effective chain of a completion body (checks applied; a check applies only
        right after a written state) and how many characters of ``body`` it read."""
        eff = [problem.start]
        i = 0
        after_state = False
        while i < len(body):
            ch = body[i]
            if ch in self.states:
                eff.append(ch)
                after_state = True
                i += 1
            elif ch == "?" and i + 1 < len(body) and body[i + 1] in self.states:
                if after_state:
                    eff[-1] = body[i + 1]
                after_state = False
                i += 2
            else:
                break
        return eff, i

    def chain_right(self, problem: Problem, body: str) -> bool:
        """Whether the effective chain of ``body`` (the text before ``=``) is the true chain."""
        eff, read = self._effective(problem, body)
        return read == len(body) and "".join(eff) == self.chain(problem)

    def format_of(self, completion: str) -> str:
        """DIRECT (starts with ``=``), CHECK (a ``?`` before the answer), STEP, or OTHER."""
        if completion.startswith("="):
            return "DIRECT"
        if not completion or completion[0] not in self.states:
            return OTHER
        body = re.split(r"[=.]", completion, maxsplit=1)[0]
        return "CHECK" if "?" in body else "STEP"

    def spans(self, prompt: str, completion: str) -> list[Segment]:
        """Labelled segments of ``prompt + completion`` in character offsets of that text.

        ``step``: one written state (``stepwise`` for the first one, the format decision);
        ``check``: ``?v`` after a written step (a check of a check's value is off the
        grammar); ``answer``/``direct``: ``=xyz``.
        Text that breaks the grammar (e.g. a stray digit) ends the labelling.
        """
        out: list[Segment] = []
        base = len(prompt)
        i = 0
        c = completion
        while i < len(c):
            ch = c[i]
            if ch in self.states:
                out.append(Segment(base + i, base + i + 1, "stepwise" if i == 0 else "step"))
                i += 1
            elif (
                ch == "?"
                and i > 0
                and i + 1 < len(c)
                and c[i + 1] in self.states
                and not (i >= 2 and c[i - 2] == "?")
            ):
                out.append(Segment(base + i, base + i + 2, "check"))
                i += 2
            elif ch == "=":
                end = i + 1
                while end < len(c) and end < i + 4 and c[end] in self.states:
                    end += 1
                if end == i + 4:
                    out.append(Segment(base + i, base + end, "direct" if i == 0 else "answer"))
                break
            else:
                break
        return out

    def segment_start(self, prefix_text: str, next_token_text: str) -> str | None:
        """The label of the segment that ``next_token_text`` would begin after ``prefix_text``.

        ``prefix_text`` is the prompt plus the completion so far (with or without a leading
        BOS string). Returns ``"direct"``, ``"stepwise"`` (a state as the first completion
        token), ``"answer"``, ``"check"``, ``"step"`` or None
        (the token continues a segment, ends the trace, or lies in the prompt).
        """
        colon = prefix_text.find(":")
        if colon < 0 or not next_token_text:
            return None
        done = prefix_text[colon + 1 :]
        if "=" in done or "." in done:
            return None
        if done.endswith("?"):
            return None  # a check's value comes next
        tok = next_token_text[0]
        if tok == "=":
            return "direct" if not done else "answer"
        if tok == "?":  # a check re-computes a written step (not a check's value)
            after_check = len(done) >= 2 and done[-2] == "?"
            return "check" if done and done[-1] in self.states and not after_check else None
        if tok in self.states:
            return "step" if done else "stepwise"
        return None

    def _completion_of(self, prefix_text: str) -> tuple[Problem, str] | None:
        """The problem and the completion so far of ``prefix_text`` (None: no prompt yet)."""
        colon = prefix_text.find(":")
        if colon < 3:
            return None
        return self.parse_prompt(prefix_text[colon - 3 : colon + 1]), prefix_text[colon + 1 :]

    def can_begin(self, prefix_text: str) -> frozenset[str]:
        """The labels some next token could begin after ``prefix_text`` (see
        :meth:`segment_start`): ``direct``/``stepwise`` at the first completion token,
        ``step``/``check``/``answer`` after a written state, nothing elsewhere."""
        got = self._completion_of(prefix_text)
        if got is None:
            return frozenset()
        done = got[1]
        if "=" in done or "." in done:
            return frozenset()
        if not done:
            return frozenset({"direct", "stepwise"})
        if done[-1] in self.states:
            after_check = len(done) >= 2 and done[-2] == "?"
            return frozenset({"step", "answer"} if after_check else {"step", "check", "answer"})
        return frozenset()

    SCHEDULE_LABELS = ("stepwise", "check", "answer", "direct")

    def schedule(self, prefix_text: str) -> str | None:
        """The ground-truth schedule: the label that should begin with the next token.

        ``stepwise`` at the first completion token (work step by step, never guess);
        ``check`` right after a written state that is wrong (not ``f`` of the state before
        it) and not yet checked; ``answer`` once the effective chain (checks applied) has
        ``k`` hops; otherwise None (write the next state, or continue a segment). The
        schedule decides only *when*: what the base writes inside each segment is its own.
        It never fires ``direct`` (a guess).
        """
        got = self._completion_of(prefix_text)
        if got is None:
            return None
        problem, done = got
        if "=" in done or "." in done:
            return None
        if not done:
            return "stepwise"
        if done[-1] not in self.states:
            return None
        eff = [problem.start]
        last_wrong = False  # the last written state is a step that is wrong, unchecked
        i = 0
        while i < len(done):
            ch = done[i]
            if ch in self.states:
                last_wrong = ch != self.step(eff[-1])
                eff.append(ch)
                i += 1
            elif ch == "?" and i + 1 < len(done) and done[i + 1] in self.states:
                if i > 0 and done[i - 1] in self.states and (i < 2 or done[i - 2] != "?"):
                    eff[-1] = done[i + 1]
                last_wrong = False
                i += 2
            else:
                return None  # off the grammar
        if last_wrong:
            return "check"
        if len(eff) - 1 >= problem.hops:
            return "answer"
        return None

    # ------------------------------------------------------------------ judging traces

    def trace_stats(self, problem: Problem, completion: str) -> TraceStats:
        """Step-by-step account of a completion (see :class:`TraceStats`)."""
        st = TraceStats(format=self.format_of(completion))
        m = _ANSWER_RE.match(completion)
        st.finished = m is not None
        st.length = m.end() if m else len(completion)
        st.correct = self.verify(problem, completion) == 1.0
        if st.format in ("DIRECT", OTHER):
            return st
        body = m.group(1) if m else completion
        eff = [problem.start]
        before = problem.start  # state before the last written step
        last_step_right: bool | None = None
        i = 0
        while i < len(body):
            ch = body[i]
            if ch in self.states:
                before = eff[-1]
                right = ch == self.step(before)
                st.steps += 1
                st.steps_right += right
                st.wrong_steps += not right
                eff.append(ch)
                last_step_right = right
                i += 1
            elif ch == "?" and i + 1 < len(body) and body[i + 1] in self.states:
                v = body[i + 1]
                if last_step_right is not None:
                    ok = v == self.step(before)
                    st.checks += 1
                    st.checks_right += ok
                    if last_step_right:
                        st.checks_after_right += 1
                    else:
                        st.checks_after_wrong += 1
                        st.hard_checks += 1
                        st.hard_checks_right += ok
                    eff[-1] = v
                    last_step_right = None
                i += 2
            else:
                break
        st.hops_written = len(eff) - 1
        st.stopped_right = m is not None and st.hops_written == problem.hops
        st.answer_consistent = m is not None and len(eff) >= 3 and m.group(2) == "".join(eff[-3:])
        st.chain_right = m is not None and st.answer_consistent and self.chain_right(problem, body)
        return st
