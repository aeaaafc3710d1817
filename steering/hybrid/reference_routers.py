"""The reference schedules: the task's ground truth (:class:`GroundTruthRouter`), every
position a label can begin (:class:`EveryBoundaryRouter`), and the first decision only
(:class:`FirstDecisionRouter`, the negative control). The protocol is in :mod:`.routers`."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

from .routers import RouterView, labels_arg, router_labels

__all__ = ["EveryBoundaryRouter", "FirstDecisionRouter", "GroundTruthRouter"]


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
        self.labels = labels_arg(labels, "GroundTruthRouter labels")

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
        self.labels = labels_arg(labels, "EveryBoundaryRouter labels")
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
        self.unless_base = bool(getattr(inner, "unless_base", False))

    def decide(self, view: RouterView) -> list[Hashable | None]:
        if view.step != 0:
            return [None] * len(view.live)
        return list(self.inner.decide(view))

    def __repr__(self) -> str:
        return f"FirstDecisionRouter({self.inner!r})"
