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

This module holds the protocol, the checks the built-in routers share, and
:class:`RouterStack` (the first router that fires wins). The built-ins: the real routers
(:mod:`.real_routers`: :class:`ModelRouter`, the RL model; :class:`ProbeRouter`, a probe on
the base), the reference schedules (:mod:`.reference_routers`: :class:`GroundTruthRouter`,
:class:`EveryBoundaryRouter`, :class:`FirstDecisionRouter`) and the random controls
(:mod:`.random_routers`: :class:`TimingRandomRouter`, :class:`AnyPositionRandomRouter`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any, Protocol, runtime_checkable

import torch

import probes

__all__ = [
    "Router",
    "RouterStack",
    "RouterView",
    "SegmentStart",
    "as_handle",
    "check_same_tokenizer",
    "labels_arg",
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


def as_handle(model: Any, what: str):
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


def labels_arg(labels: Sequence[Hashable] | None, what: str) -> tuple[Hashable, ...] | None:
    if labels is None:
        return None
    if isinstance(labels, str):
        labels = [labels]
    out = tuple(labels)
    if not out:
        raise ValueError(f"{what}: give at least one label")
    return out


# -- several routers, one decision ------------------------------------------------------------


class RouterStack:
    """Several routers, one decision: the first whose decision is not ``None`` wins.

    E.g. ``RouterStack(EveryBoundaryRouter(task, ["check"]), GroundTruthRouter(task,
    ["stepwise", "answer"]))``: checks everywhere, the stop and the first step as in the
    ground truth. ``labels`` is the union; the token model and site come from the first
    router that has one (at most one router may read a site, and all carry the same
    router model if any); ``unless_base`` holds for the stack when its routers all have it.
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
        models = [r.model for r in routers if getattr(r, "model", None) is not None]
        if any(m is not models[0] for m in models):
            raise ValueError(
                "routers in a stack carry different router models: a hybrid runs one token "
                "model, so the others would decide on its logits. Give them the same model."
            )
        self.model = models[0] if models else None
        self.site = sites[0] if sites else None
        flags = {bool(getattr(r, "unless_base", False)) for r in routers}
        if len(flags) > 1:
            raise ValueError(
                "some routers in the stack have unless_base and some not: it filters the "
                "stack's whole decision, so give it to all of them or to none"
            )
        self.unless_base = flags.pop()

    def decide(self, view: RouterView) -> list[Hashable | None]:
        out: list[Hashable | None] = [None] * len(view.live)
        for r in self.routers:
            got = r.decide(view)
            out = [a if a is not None else b for a, b in zip(out, got)]
        return out

    def __repr__(self) -> str:
        return f"RouterStack({', '.join(map(repr, self.routers))})"
