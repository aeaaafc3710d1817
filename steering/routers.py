"""Routers for the hybrid decoder: who decides, token by token, when to fire which label.

A router is configuration only (it holds no per-run state); :class:`HybridDecoder` asks it
at every step, for every live row, for a label or ``None``. Three kinds:

:class:`ModelRouter`
    The RL model reads the same prefix as the base, with its *own* KV cache fed exactly
    the tokens the base consumed (so a step costs one base step plus one router step). It
    fires label ``X`` when its most likely next token begins a segment of strategy ``X``
    (the task's ``segment_start(prefix_text, next_token_text)`` decides), optionally only
    when its probability of that token is at least ``tau``, and optionally only when the
    base model's own most likely next token does not begin ``X`` (``unless_base``).
:class:`ProbeRouter`
    A fitted scikit-learn-style probe on the base model's own activations at one site:
    no second model. It reads the residual at the deciding position *inside the same
    forward pass* that it steers (the read site must come no later than the steering
    sites).
:class:`RandomRouter`
    Fires at a given rate, drawing labels from given shares: the control for "does *when*
    matter?". Draws come from a counter-based hash of ``(seed, prompt, sample, step)``, so
    they do not depend on batching.

Routers used in ``handoff`` mode or with the re-rank control also need a *token model*
(the model that emits or ranks the token): a ModelRouter's own model, or ``model=`` on
the other two.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

import probes
from probes import Site

__all__ = [
    "ModelRouter",
    "ProbeRouter",
    "RandomRouter",
    "SegmentStart",
    "check_same_tokenizer",
]

SegmentStart = Callable[[str, str], Hashable | None]
"""``segment_start(prefix_text, next_token_text) -> label | None`` (the task's labeller)."""


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


class ModelRouter:
    """The RL model as router: fires ``X`` when its most likely next token begins segment ``X``.

    Parameters
    ----------
    model:
        The router (RL) model: a handle, a transformers model, or a checkpoint path
        (wrapped with :func:`probes.wrap`). Its tokenizer must equal the base's.
    segment_start:
        ``segment_start(prefix_text, next_token_text) -> label | None``: for real
        reasoning text :func:`rlvr.reasoning.segment_start_label`, for the model organism
        ``PermutationChain.segment_start``. ``prefix_text`` is the decoded prompt plus the
        completion so far (``include_prompt=False``: the completion only), without special
        tokens; ``next_token_text`` is the text the candidate token adds in that context.
    tau:
        Fire only when the router's probability (softmax at temperature 1) of its most
        likely token, the segment-start token, is at least ``tau``. ``0`` fires on every
        segment start; raising it dials down the share of tokens touched.
    unless_base:
        Fire only when the base model's most likely next token does *not* begin the same
        label. In ``steer`` mode this needs the base's unsteered logits before the steered
        forward: the decoder *peeks* (one extra base step on the batch's new token through
        its KV cache, then crops the cache back), and only on steps where some row has a
        candidate firing; so a step costs ``(1 + p) base + 1 router`` with ``p`` the share
        of steps with a candidate. In ``handoff`` and re-rank modes no vector is added, so
        the base's logits of the ordinary forward are used and nothing extra runs.
    """

    kind = "model"

    def __init__(
        self,
        model: Any,
        segment_start: SegmentStart,
        *,
        tau: float = 0.0,
        unless_base: bool = False,
        include_prompt: bool = True,
    ) -> None:
        if not callable(segment_start):
            raise TypeError(
                "segment_start must be a callable (prefix_text, next_token_text) -> label | None, "
                f"e.g. task.segment_start; got a {type(segment_start).__name__}"
            )
        if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not 0.0 <= tau <= 1.0:
            raise ValueError(f"tau is a probability threshold in [0, 1], got {tau!r}")
        self.handle = _as_handle(model, "ModelRouter model")
        if self.handle is None:
            raise ValueError("ModelRouter needs a router model (the RL model)")
        self.segment_start = segment_start
        self.tau = float(tau)
        self.unless_base = bool(unless_base)
        self.include_prompt = bool(include_prompt)

    @property
    def model(self):
        """The token model (the router itself)."""
        return self.handle

    def __repr__(self) -> str:
        return f"ModelRouter({self.handle!r}, tau={self.tau}, unless_base={self.unless_base})"


class ProbeRouter:
    """A fitted probe on the base's own activations at ``site`` decides which label fires.

    ``probe`` is a fitted scikit-learn-style classifier (``classes_`` and
    ``predict_proba``), e.g. :func:`probes.make_probe` fitted on an
    :class:`probes.ActivationTable`. At each step the residual at ``site`` at the deciding
    position (the one whose logits choose the next token) is classified; the most probable
    class fires its label when its probability is at least ``tau``. ``labels`` maps classes
    to labels (``None`` = no firing), e.g. ``{1: "check"}`` for a binary probe; by default a
    class fires itself when it is one of the decoder's labels. ``model`` is an optional
    token model for ``handoff`` mode or the re-rank control.
    """

    kind = "probe"

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
        if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not 0.0 <= tau <= 1.0:
            raise ValueError(f"tau is a probability threshold in [0, 1], got {tau!r}")
        self.probe = probe
        self.site = Site.parse(site)
        self.classes = list(np.asarray(classes).tolist())
        if labels is not None:
            unknown = [c for c in labels if c not in self.classes]
            if unknown:
                raise ValueError(
                    f"labels names classes {unknown} the probe does not have ({self.classes})"
                )
        self.labels = dict(labels) if labels is not None else None
        self.tau = float(tau)
        self.handle = _as_handle(model, "ProbeRouter model")

    @property
    def model(self):
        return self.handle

    def class_labels(self, allowed: Sequence[Hashable] | None) -> list[Hashable | None]:
        """The label each probe class fires (``None``: none), in ``classes_`` order."""
        if self.labels is not None:
            out = [self.labels.get(c) for c in self.classes]
        else:
            out = [c if allowed is None or c in allowed else None for c in self.classes]
            if allowed is not None and not any(x is not None for x in out):
                raise ValueError(
                    f"none of the probe's classes {self.classes} is a label of the decoder "
                    f"({list(allowed)}): pass labels={{class: label}}, e.g. {{1: 'check'}}"
                )
        if allowed is not None:
            bad = [x for x in out if x is not None and x not in allowed]
            if bad:
                raise ValueError(
                    f"the probe fires labels {bad} that have no vector ({list(allowed)})"
                )
        return out

    def decide(
        self, h_last: torch.Tensor, class_labels: Sequence[Hashable | None]
    ) -> list[Hashable | None]:
        """Labels for rows given their residuals ``(rows, d_model)`` at the deciding position."""
        x = h_last.detach().to("cpu", torch.float64).numpy()
        proba = np.asarray(self.probe.predict_proba(x))
        best = proba.argmax(1)
        return [
            class_labels[int(c)] if proba[r, c] >= self.tau else None
            for r, c in enumerate(best.tolist())
        ]

    def __repr__(self) -> str:
        return f"ProbeRouter({type(self.probe).__name__} at {self.site}, tau={self.tau})"


class RandomRouter:
    """Fires at ``rate`` (per generated token), labels drawn with ``shares``: the control.

    ``shares`` maps label -> weight (normalised here), or is a list of labels (equal
    weights). Draws are a counter-based hash of ``(seed, prompt, sample, step)``: the same
    seed fires at the same tokens whatever the batching. ``model`` is an optional token
    model for ``handoff`` mode or the re-rank control.
    """

    kind = "random"

    def __init__(
        self,
        rate: float,
        shares: Mapping[Hashable, float] | Sequence[Hashable],
        *,
        seed: int = 0,
        model: Any = None,
    ) -> None:
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
            raise ValueError(f"rate is a firing probability in [0, 1], got {rate!r}")
        if isinstance(shares, Mapping):
            items = [(k, float(v)) for k, v in shares.items()]
        elif isinstance(shares, (list, tuple)):
            items = [(k, 1.0) for k in shares]
        else:
            raise TypeError(f"shares must be {{label: weight}} or a list of labels, got {shares!r}")
        items = [(k, v) for k, v in items if v > 0]
        if any(v < 0 or v != v for _, v in items):
            raise ValueError(f"label shares must be non-negative numbers, got {shares!r}")
        if not items and rate > 0:
            raise ValueError("a RandomRouter that fires needs at least one label with a share > 0")
        total = sum(v for _, v in items) or 1.0
        self.rate = float(rate)
        self.labels = [k for k, _ in items]
        self.cum = torch.tensor(np.cumsum([v / total for _, v in items]), dtype=torch.float64)
        self.seed = int(seed)
        self.handle = _as_handle(model, "RandomRouter model")

    @property
    def model(self):
        return self.handle

    @property
    def shares(self) -> dict[Hashable, float]:
        c = self.cum.tolist()
        return {k: c[i] - (c[i - 1] if i else 0.0) for i, k in enumerate(self.labels)}

    def decide(self, u_fire: torch.Tensor, u_label: torch.Tensor) -> list[Hashable | None]:
        """Labels from two uniforms per row (fire if ``u_fire < rate``)."""
        fire = (u_fire.double() < self.rate).tolist()
        pick = torch.searchsorted(self.cum, u_label.double().cpu()[:, None], right=True)
        pick = pick.clamp(max=max(len(self.labels) - 1, 0)).squeeze(1).tolist()
        return [self.labels[p] if f else None for f, p in zip(fire, pick)]

    def __repr__(self) -> str:
        return f"RandomRouter(rate={self.rate:.4f}, shares={self.shares}, seed={self.seed})"
