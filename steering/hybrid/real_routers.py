"""The real routers: the RL model (:class:`ModelRouter`) and a probe on the base's own
activations (:class:`ProbeRouter`). The protocol they follow is in :mod:`.routers`."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from probes import Site
from rlvr.checks import probability

from .routers import RouterView, SegmentStart, as_handle, labels_arg

__all__ = ["ModelRouter", "ProbeRouter"]


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
        self.handle = as_handle(model, "ModelRouter model")
        if self.handle is None:
            raise ValueError("ModelRouter needs a router model (the RL model)")
        self.segment_start = segment_start
        self.unless_base = bool(unless_base)
        self.labels = labels_arg(labels, "ModelRouter labels")
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
        self.handle = as_handle(model, "ProbeRouter model")
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
