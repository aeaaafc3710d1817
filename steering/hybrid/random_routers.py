"""The random controls: :class:`TimingRandomRouter` (timing-true: fires where a label can
begin, at a matched rate) and :class:`AnyPositionRandomRouter` (at any position). Random
draws come from a counter-based hash of ``(seed, prompt, sample, step)`` (``view.uniform``),
so they do not depend on batching. The protocol is in :mod:`.routers`."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from rlvr.checks import probability

from .routers import RouterView, as_handle

__all__ = ["AnyPositionRandomRouter", "TimingRandomRouter"]


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
    labels can begin, one uniform number per row picks at most one of them: label ``X``
    owns a slice ``rates[X]`` long of [0, 1) (the eligible labels' slices laid end to end
    in ``rates`` order), so each still fires at its own rate as long as the eligible
    labels' rates sum to at most 1 (a router that fires one label at a time has such
    rates); past 1, the later labels' slices are cut short.
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
        self.handle = as_handle(model, "TimingRandomRouter model")

    @property
    def model(self):
        return self.handle

    def decide(self, view: RouterView) -> list[Hashable | None]:
        u = view.uniform(self.seed * 131 + 7).tolist()
        out = []
        for r, ok in enumerate(view.live):
            lab, end = None, 0.0
            if ok:
                can = self.can_begin(view.prefix(r))
                for x in self.labels:
                    if x in can:
                        end += self.rates[x]
                        if u[r] < end:
                            lab = x
                            break
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
        self.handle = as_handle(model, "AnyPositionRandomRouter model")

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
