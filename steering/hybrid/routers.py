"""Routers: who decides, token by token, when to fire which label.

A router is any object with a ``decide(view)`` method (the :class:`Router` protocol),
so a notebook can define its own. At every step the decoder hands it a
:class:`RouterView` of the running batch and it returns one entry per row: a label or
``None``. Optional attributes:

``labels``
    The labels it schedules (a tuple; ``None``: whatever it returns). Under an
    *exclusive* schedule these are the labels the base may not begin on its own.
``model``
    A token model (a probes handle sharing the base's tokenizer): the decoder runs it on
    the same tokens as the base, through its own KV cache, and shows its last-position
    logits as ``view.logits``. Needed by ``emit="sample"``/``"argmax"`` and the re-rank
    control.
``site``
    A :class:`probes.Site`: the router then decides *inside* the base's forward, reading
    ``view.hidden`` (the base's residual at that site at the deciding position).
``scores(view)``
    Its confidence that each label begins now, one ``{label: float}`` per row: the
    router-quality AUROC uses it (without it, the binary decision is the score).

Built in: :class:`ModelRouter` (the RL model), :class:`ProbeRouter` (a probe on the base),
the reference schedules :class:`GroundTruthRouter`, :class:`EveryBoundaryRouter`,
:class:`FirstDecisionRouter`, the controls :class:`TimingRandomRouter` (timing-true) and
:class:`AnyPositionRandomRouter`, and :class:`RouterStack` (the first router that fires
wins). Random draws come from a counter-based hash of ``(seed, prompt, sample, step)``,
so they do not depend on batching.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

import probes
from probes import Site
from rlvr.checks import probability

__all__ = [
    "AnyPositionRandomRouter",
    "EveryBoundaryRouter",
    "FirstDecisionRouter",
    "GroundTruthRouter",
    "ModelRouter",
    "ProbeRouter",
    "Router",
    "RouterStack",
    "RouterView",
    "SegmentStart",
    "TimingRandomRouter",
    "check_same_tokenizer",
    "router_labels",
]

SegmentStart = Callable[[str, str], Hashable | None]
"""``segment_start(prefix_text, next_token_text) -> label | None`` (the task's labeller)."""


class RouterView(Protocol):
    """What a router sees at one step (rows of the running batch; see ``run.StepView``)."""

    step: int
    live: list[bool]
    logits: torch.Tensor | None  # the router model's last-position logits (rows, vocab)
    hidden: torch.Tensor | None  # the base's residual at router.site (rows, d_model)

    def prefix(self, row: int) -> str: ...  # prompt + completion so far (no special tokens)
    def next_text(self, row: int, token: int) -> str: ...  # the text ``token`` adds there
    def next_texts(self, row: int, tokens: list[int]) -> list[str]: ...  # next_text of each
    def uniform(self, salt: int) -> torch.Tensor: ...  # one U(0,1) per row, per stream


@runtime_checkable
class Router(Protocol):
    """Anything with ``decide(view) -> [label | None per row]`` (see the module docs)."""

    def decide(self, view: RouterView) -> Sequence[Hashable | None]: ...


def router_labels(router: Any) -> tuple[Hashable, ...] | None:
    labels = getattr(router, "labels", None)
    return tuple(labels) if labels is not None else None


def _as_handle(model: Any, what: str):
    if model is None:
        return None
    try:
        return probes.wrap(model)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{what}: {e}") from e


def _vocab(tokenizer: Any) -> dict[str, int]:
    get = getattr(tokenizer, "get_vocab", None)
    if get is None:
        raise TypeError(
            f"cannot compare tokenizers: a {type(tokenizer).__name__} has no get_vocab()"
        )
    return dict(get())


def check_same_tokenizer(base_tokenizer: Any, router_tokenizer: Any, what: str = "router") -> None:
    """Refuse a router model whose vocabulary differs from the base model's.

    The router reads the base's token ids and may emit tokens into the base's sequence, so
    the two vocabularies must be identical (same strings at the same ids).
    """
    if base_tokenizer is router_tokenizer:
        return
    a, b = _vocab(base_tokenizer), _vocab(router_tokenizer)
    if a == b:
        return
    only_a = sorted(set(a) - set(b))[:3]
    only_b = sorted(set(b) - set(a))[:3]
    moved = sorted(k for k in set(a) & set(b) if a[k] != b[k])[:3]
    detail = []
    if only_a:
        detail.append(f"only the base has {only_a}")
    if only_b:
        detail.append(f"only the {what} has {only_b}")
    if moved:
        detail.append(f"{moved} have different ids")
    raise ValueError(
        f"the {what} model's tokenizer differs from the base model's ({len(a)} vs {len(b)} "
        f"entries; {'; '.join(detail) or 'different vocabularies'}): a token-level router "
        "must share the base's vocabulary. Use a ProbeRouter on the base model's own "
        "activations instead (no second model), or a router model with the base's tokenizer."
    )


def _labels_arg(labels: Sequence[Hashable] | None, what: str) -> tuple[Hashable, ...] | None:
    if labels is None:
        return None
    if isinstance(labels, str):
        labels = [labels]
    out = tuple(labels)
    if not out:
        raise ValueError(f"{what}: give at least one label")
    return out


# -- the RL model -------------------------------------------------------------------------


class ModelRouter:
    """The RL model as router: fires ``X`` when its most likely next token begins segment ``X``.

    ``segment_start(prefix_text, next_token_text) -> label | None`` is the task's test
    (:meth:`rlvr.tasks.OrganismTask.segment_start`, or for reasoning text
    :func:`rlvr.text.reasoning.segment_start_label`). ``tau``: fire only when the router's
    probability (softmax at T = 1) of that token is at least ``tau``. ``unless_base``:
    fire only when the base's own most likely token does not begin the same label (handoff
    mode and the re-rank control only: it needs the base's logits, known after the base's
    forward). ``labels``: the labels it may fire (default: any the task names).
    ``score_k``: its score for a label is its probability mass on those of its ``score_k``
    most likely tokens that begin the label.
    """

    def __init__(
        self,
        model: Any,
        segment_start: SegmentStart,
        *,
        tau: float = 0.0,
        unless_base: bool = False,
        labels: Sequence[Hashable] | None = None,
        score_k: int = 8,
    ) -> None:
        if not callable(segment_start):
            raise TypeError(
                "segment_start must be a callable (prefix_text, next_token_text) -> label | None, "
                f"e.g. task.segment_start; got a {type(segment_start).__name__}"
            )
        self.tau = probability(tau, "tau", "a probability threshold")
        self.handle = _as_handle(model, "ModelRouter model")
        if self.handle is None:
            raise ValueError("ModelRouter needs a router model (the RL model)")
        self.segment_start = segment_start
        self.unless_base = bool(unless_base)
        self.labels = _labels_arg(labels, "ModelRouter labels")
        self.score_k = int(score_k)

    @property
    def model(self):
        return self.handle

    def decide(self, view: RouterView) -> list[Hashable | None]:
        probs = torch.softmax(view.logits.float(), dim=-1)
        p_top, top = probs.max(-1)
        out: list[Hashable | None] = []
        for r, (ok, p, tok) in enumerate(zip(view.live, p_top.tolist(), top.tolist())):
            if not ok or p < self.tau:
                out.append(None)
                continue
            label = self.segment_start(view.prefix(r), view.next_text(r, tok))
            out.append(label if self.labels is None or label in self.labels else None)
        return out

    def scores(self, view: RouterView) -> list[dict[Hashable, float]]:
        """Per row: its probability mass, among its ``score_k`` most likely tokens, on the
        tokens that begin each label."""
        probs = torch.softmax(view.logits.float(), dim=-1)
        p, top = probs.topk(min(self.score_k, probs.shape[-1]), dim=-1)
        out = []
        for r, (ps, toks) in enumerate(zip(p.tolist(), top.tolist())):
            prefix, mass = view.prefix(r), {}
            for q, x in zip(ps, view.next_texts(r, toks)):
                lab = self.segment_start(prefix, x)
                if lab is not None:
                    mass[lab] = mass.get(lab, 0.0) + q
            out.append(mass)
        return out

    def __repr__(self) -> str:
        return f"ModelRouter({self.handle!r}, tau={self.tau}, unless_base={self.unless_base})"


# -- a probe on the base ---------------------------------------------------------------------


class ProbeRouter:
    """A fitted probe on the base's own activations at ``site`` decides which label fires.

    ``probe`` is a fitted scikit-learn-style classifier (``classes_``, ``predict_proba``).
    At each step the residual at ``site`` at the deciding position is classified inside
    the base's forward; the most probable class fires its label when its probability is at
    least ``tau``. ``labels`` maps classes to labels (``None`` = no firing), e.g.
    ``{1: "check"}``; by default a class fires itself. ``model`` is an optional token model
    (for ``emit="sample"``/``"argmax"`` or the re-rank control).
    """

    def __init__(
        self,
        probe: Any,
        site: Site | str | int | tuple,
        *,
        labels: Mapping[Any, Hashable | None] | None = None,
        tau: float = 0.0,
        model: Any = None,
    ) -> None:
        if not hasattr(probe, "predict_proba"):
            raise TypeError(
                f"a ProbeRouter needs a classifier with predict_proba (a fitted sklearn "
                f"estimator), got a {type(probe).__name__}"
            )
        classes = getattr(probe, "classes_", None)
        if classes is None:
            raise ValueError("the probe is not fitted (no classes_): call probe.fit(X, y) first")
        self.tau = probability(tau, "tau", "a probability threshold")
        self.probe = probe
        self.site = Site.parse(site)
        self.classes = list(np.asarray(classes).tolist())
        if labels is not None:
            unknown = [c for c in labels if c not in self.classes]
            if unknown:
                raise ValueError(
                    f"labels names classes {unknown} the probe does not have ({self.classes})"
                )
        self.class_labels = [(labels.get(c) if labels is not None else c) for c in self.classes]
        fired = [x for x in self.class_labels if x is not None]
        if not fired:
            raise ValueError(
                f"none of the probe's classes {self.classes} fires a label: pass "
                "labels={class: label}, e.g. {1: 'check'}"
            )
        self.labels = tuple(dict.fromkeys(fired))
        self.handle = _as_handle(model, "ProbeRouter model")
        self._proba: np.ndarray | None = None

    @property
    def model(self):
        return self.handle

    def _predict(self, view: RouterView) -> np.ndarray:
        x = view.hidden.detach().to("cpu", torch.float64).numpy()
        return np.asarray(self.probe.predict_proba(x))

    def decide(self, view: RouterView) -> list[Hashable | None]:
        proba = self._predict(view)
        best = proba.argmax(1)
        return [
            self.class_labels[int(c)] if ok and proba[r, c] >= self.tau else None
            for r, (c, ok) in enumerate(zip(best.tolist(), view.live))
        ]

    def scores(self, view: RouterView) -> list[dict[Hashable, float]]:
        """Per row: the probe's probability of each label."""
        proba = self._predict(view)
        out = []
        for row in proba.tolist():
            d: dict[Hashable, float] = {}
            for lab, q in zip(self.class_labels, row):
                if lab is not None:
                    d[lab] = d.get(lab, 0.0) + q
            out.append(d)
        return out

    def __repr__(self) -> str:
        return f"ProbeRouter({type(self.probe).__name__} at {self.site}, tau={self.tau})"


# -- reference schedules --------------------------------------------------------------------


class GroundTruthRouter:
    """The task's ground-truth schedule: ``schedule(prefix_text) -> label | None``.

    Pass the task (anything with a callable ``schedule``) or the function itself. The
    positive control of scheduling: where the task can say where a strategy helps (the
    organism: check right after a wrongly written state, stop at the right hop). A task
    without a schedule (real reasoning) is refused. ``labels`` restricts what it fires.
    """

    def __init__(self, task: Any, labels: Sequence[Hashable] | None = None) -> None:
        fn = getattr(task, "schedule", task)  # a task, or the schedule function itself
        if not callable(fn):
            raise ValueError(
                f"this task ({type(task).__name__}) has no ground-truth schedule: a "
                "GroundTruthRouter needs a task that can say where a strategy helps (e.g. "
                "the model organism); on real reasoning use the model or probe routers"
            )
        self.schedule = fn
        if labels is None:  # what the task's schedule decides, when it says
            labels = getattr(task, "schedule_labels", None) or None
        self.labels = _labels_arg(labels, "GroundTruthRouter labels")

    def decide(self, view: RouterView) -> list[Hashable | None]:
        out = []
        for r, ok in enumerate(view.live):
            lab = self.schedule(view.prefix(r)) if ok else None
            out.append(lab if self.labels is None or lab in self.labels else None)
        return out

    def __repr__(self) -> str:
        return f"GroundTruthRouter(labels={self.labels})"


class EveryBoundaryRouter:
    """Fires each of ``labels`` wherever it can begin (``can_begin(prefix) -> labels``),
    the first of ``labels`` that can begin winning. A reference schedule that knows where
    but not *when*: e.g. a check after every written state."""

    def __init__(self, can_begin: Callable[[str], Any] | Any, labels: Sequence[Hashable]) -> None:
        fn = getattr(can_begin, "can_begin", can_begin)
        if not callable(fn):
            raise TypeError(
                "EveryBoundaryRouter needs can_begin(prefix_text) -> labels (or a task with it)"
            )
        self.can_begin = fn
        self.labels = _labels_arg(labels, "EveryBoundaryRouter labels")
        if self.labels is None:
            raise ValueError("EveryBoundaryRouter needs labels: which labels to fire everywhere")

    def decide(self, view: RouterView) -> list[Hashable | None]:
        out = []
        for r, ok in enumerate(view.live):
            can = self.can_begin(view.prefix(r)) if ok else ()
            out.append(next((x for x in self.labels if x in can), None))
        return out

    def __repr__(self) -> str:
        return f"EveryBoundaryRouter(labels={self.labels})"


class FirstDecisionRouter:
    """Passes ``inner``'s decision at the first completion token only: a router that
    schedules the first decision (e.g. the organism's ``stepwise`` vs ``direct``) and
    nothing after it. The negative control for "timing inside the trace matters"."""

    def __init__(self, inner: Any) -> None:
        if not hasattr(inner, "decide"):
            raise TypeError(f"FirstDecisionRouter wraps a router, got a {type(inner).__name__}")
        self.inner = inner
        self.labels = router_labels(inner)
        self.model = getattr(inner, "model", None)
        self.site = getattr(inner, "site", None)

    def decide(self, view: RouterView) -> list[Hashable | None]:
        if view.step != 0:
            return [None] * len(view.live)
        return list(self.inner.decide(view))

    def __repr__(self) -> str:
        return f"FirstDecisionRouter({self.inner!r})"


class RouterStack:
    """Several routers, one decision: the first whose decision is not ``None`` wins.

    E.g. ``RouterStack(EveryBoundaryRouter(task, ["check"]), GroundTruthRouter(task,
    ["stepwise", "answer"]))``: checks everywhere, the stop and the first step as in the
    ground truth. ``labels`` is the union; the token model and site come from the first
    router that has one (at most one router may read a site).
    """

    def __init__(self, *routers: Any) -> None:
        if not routers or any(not hasattr(r, "decide") for r in routers):
            raise TypeError("RouterStack takes one or more routers (objects with decide)")
        sites = [r.site for r in routers if getattr(r, "site", None) is not None]
        if len(set(sites)) > 1:
            raise ValueError(f"routers in a stack read different sites {sites}: use one site")
        self.routers = routers
        labs = [router_labels(r) for r in routers]
        self.labels = (
            None
            if any(x is None for x in labs)
            else tuple(dict.fromkeys(x for g in labs for x in g))
        )
        self.model = next((r.model for r in routers if getattr(r, "model", None) is not None), None)
        self.site = sites[0] if sites else None

    def decide(self, view: RouterView) -> list[Hashable | None]:
        out: list[Hashable | None] = [None] * len(view.live)
        for r in self.routers:
            got = r.decide(view)
            out = [a if a is not None else b for a, b in zip(out, got)]
        return out

    def __repr__(self) -> str:
        return f"RouterStack({', '.join(map(repr, self.routers))})"


# -- random controls ------------------------------------------------------------------------


def _shares(shares: Mapping[Hashable, float] | Sequence[Hashable]) -> list[tuple[Hashable, float]]:
    if isinstance(shares, Mapping):
        items = [(k, float(v)) for k, v in shares.items()]
    elif isinstance(shares, (list, tuple)):
        items = [(k, 1.0) for k in shares]
    else:
        raise TypeError(f"shares must be {{label: weight}} or a list of labels, got {shares!r}")
    if any(v < 0 or v != v for _, v in items):
        raise ValueError(f"label shares must be non-negative numbers, got {shares!r}")
    return [(k, v) for k, v in items if v > 0]


class TimingRandomRouter:
    """The timing-true random control: label ``X`` fires with probability ``rates[X]`` at
    each position where ``X`` can begin (``can_begin(prefix)``), and never elsewhere.

    Give it the real router's per-label rate *at eligible positions* (the decoder measures
    them: :attr:`HybridResult.eligible_rates`) and it fires the same labels as often, where
    they are possible, at random moments: what it lacks is only *when*. Where several
    labels fire at once the first in ``rates`` order wins.
    """

    def __init__(
        self,
        rates: Mapping[Hashable, float],
        can_begin: Callable[[str], Any] | Any,
        *,
        seed: int = 0,
        model: Any = None,
    ) -> None:
        fn = getattr(can_begin, "can_begin", can_begin)
        if not callable(fn):
            raise TypeError("TimingRandomRouter needs can_begin(prefix_text) (or a task with it)")
        if not isinstance(rates, Mapping) or not rates:
            raise ValueError("TimingRandomRouter needs rates {label: rate at eligible positions}")
        self.rates = {
            k: probability(v, f"rates[{k!r}]", "a firing probability") for k, v in rates.items()
        }
        self.labels = tuple(self.rates)
        self.can_begin = fn
        self.seed = int(seed)
        self.handle = _as_handle(model, "TimingRandomRouter model")

    @property
    def model(self):
        return self.handle

    def decide(self, view: RouterView) -> list[Hashable | None]:
        u = [view.uniform(self.seed * 131 + 7 + i).tolist() for i in range(len(self.labels))]
        out = []
        for r, ok in enumerate(view.live):
            lab = None
            if ok:
                can = self.can_begin(view.prefix(r))
                lab = next(
                    (x for i, x in enumerate(self.labels) if x in can and u[i][r] < self.rates[x]),
                    None,
                )
            out.append(lab)
        return out

    def __repr__(self) -> str:
        rates = {k: round(v, 4) for k, v in self.rates.items()}
        return f"TimingRandomRouter(rates={rates}, seed={self.seed})"


class AnyPositionRandomRouter:
    """Fires at ``rate`` per generated token at *any* position, labels drawn with ``shares``.

    Not a timing control: in handoff mode most of its firings fall where the label cannot
    begin, and hand the token model ordinary tokens to write. Kept as the crude baseline;
    use :class:`TimingRandomRouter` to test timing.
    """

    def __init__(
        self,
        rate: float,
        shares: Mapping[Hashable, float] | Sequence[Hashable],
        *,
        seed: int = 0,
        model: Any = None,
    ) -> None:
        self.rate = probability(rate, "rate", "a firing probability")
        items = _shares(shares)
        if not items and rate > 0:
            raise ValueError("a random router that fires needs at least one label with a share > 0")
        total = sum(v for _, v in items) or 1.0
        self.labels = tuple(k for k, _ in items)
        self.cum = torch.tensor(np.cumsum([v / total for _, v in items]), dtype=torch.float64)
        self.seed = int(seed)
        self.handle = _as_handle(model, "AnyPositionRandomRouter model")

    @property
    def model(self):
        return self.handle

    @property
    def shares(self) -> dict[Hashable, float]:
        c = self.cum.tolist()
        return {k: c[i] - (c[i - 1] if i else 0.0) for i, k in enumerate(self.labels)}

    def decide(self, view: RouterView) -> list[Hashable | None]:
        fire = (view.uniform(self.seed * 131 + 1).double() < self.rate).tolist()
        u = view.uniform(self.seed * 131 + 2).double().cpu()
        pick = torch.searchsorted(self.cum, u[:, None], right=True)
        pick = pick.clamp(max=max(len(self.labels) - 1, 0)).squeeze(1).tolist()
        return [self.labels[p] if f and ok else None for f, p, ok in zip(fire, pick, view.live)]

    def __repr__(self) -> str:
        return (
            f"AnyPositionRandomRouter(rate={self.rate:.4f}, shares={self.shares}, seed={self.seed})"
        )
