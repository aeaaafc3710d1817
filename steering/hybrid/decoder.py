"""The hybrid decoder: the base model writes every token, a router decides when to intervene.

This measures "scheduling alone": the base model already knows *how* to run a strategy;
the router supplies only *when* (and which). Per step and per row the router returns a
label or nothing, and the decoder acts on it:

- ``mode="steer"`` — add ``coef * v[label]`` (the base model's vector) at the position
  whose logits choose this step's token; the base then writes the token.
- ``mode="handoff"`` — that token is chosen by the emission rule ``emit``: ``"sample"``
  (the router model's sample, with the same uniform the loop would have used),
  ``"argmax"`` (the router model's most likely token) or ``"label"`` (the base's own
  choice among its ``label_top_k`` most likely tokens that begin the label: no second
  model; where none of them does, the base's token stands).

``exclusive=True`` makes the schedule the whole schedule: where the router does not fire
a scheduled label, the base may not begin it on its own (its token is redrawn from its
distribution without that token, with the same uniform, until it begins no unscheduled
label). Without it a schedule is diluted by the base's own habits.

Controls: ``rerank`` (on firing, the router model's favourite among the base's unsteered
top-``rerank_k``; no vector), ``random_vectors`` and ``bias_only`` (steer mode). The
random-timing controls are routers (:class:`~steering.hybrid.random_routers.TimingRandomRouter`,
:class:`~steering.hybrid.random_routers.AnyPositionRandomRouter`) built from a real run's
:attr:`HybridResult.eligible_rates` / ``steered_fraction``.

Given ``task`` (anything with ``segment_start``, ``can_begin`` and optionally a
ground-truth ``schedule``), every step of every row is recorded for router quality.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import torch

import probes
from probes.sites import Site, exec_order
from rlvr.generation.sampling import sample
from rlvr.generation.sampling_params import UNSET, SamplingParams, resolve_params

from ..steer import Steer
from ..vocab import EMIT_RULES, MODES
from .controls import bias_only_vectors, random_vectors_like
from .records import HybridResult
from .routers import check_same_tokenizer, router_labels
from .run import HybridRun

__all__ = ["HybridDecoder"]


class HybridDecoder:
    """Base writes, router schedules. Configuration only: each :meth:`generate` is independent.

    Parameters
    ----------
    base:
        The base model (handle, transformers model or checkpoint path): it writes the tokens.
    router:
        Any object with ``decide(view)`` (see :mod:`steering.hybrid.routers`). A token
        model it carries must share the base's tokenizer.
    vectors:
        The base model's strategy vectors: ``{label: SteeringVector}``, a list of
        SteeringVectors (grouped by ``.label``), or ``{label: {Site: tensor}}``. Needed in
        steer mode. SteeringVectors carrying a fingerprint are checked against the base
        (``check_vectors=False`` skips that).
    task:
        ``segment_start(prefix, next_text)``, ``can_begin(prefix)`` and optionally
        ``schedule(prefix)``: needed by ``emit="label"``, ``exclusive``, ``unless_base``,
        and for the per-step records of router quality.
    mode, emit:
        ``"steer"`` or ``"handoff"``; the emission rule in handoff mode (default
        ``"sample"`` when the router has a model, else ``"label"``).
    exclusive:
        The schedule is the whole schedule (see the module docs).
    labels:
        Labels allowed to fire; under ``exclusive`` the labels the base may not begin
        unscheduled (default: the vectors' labels in steer mode, the router's otherwise).
    """

    def __init__(
        self,
        base: Any,
        router: Any,
        vectors: Any = None,
        *,
        task: Any = None,
        mode: str = "steer",
        emit: str | None = None,
        exclusive: bool = False,
        coef: float | Mapping[Hashable, float] = 1.0,
        labels: Sequence[Hashable] | None = None,
        label_top_k: int = 64,
        rerank: bool = False,
        rerank_k: int = 5,
        random_vectors: bool = False,
        bias_only: bool = False,
        control_seed: int = 0,
        check_vectors: bool = True,
    ) -> None:
        self._config = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        try:
            self.base = probes.wrap(base)
        except TypeError as e:
            raise TypeError(f"the base model: {e}") from e
        if not callable(getattr(router, "decide", None)):
            raise TypeError(
                f"a router needs a decide(view) method (see steering.hybrid.routers), got a "
                f"{type(router).__name__}"
            )
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
        self.router, self.mode, self.task = router, mode, task
        self.rerank = bool(rerank)
        self.action = "rerank" if self.rerank else mode
        for name, val in (("rerank_k", rerank_k), ("label_top_k", label_top_k)):
            if isinstance(val, bool) or not isinstance(val, int) or val < 1:
                raise ValueError(f"{name} must be a positive int, got {val!r}")
        self.rerank_k, self.label_top_k = rerank_k, label_top_k
        self.coef = coef
        self.random_vectors, self.bias_only = bool(random_vectors), bool(bias_only)
        self.control_seed = int(control_seed)
        self.exclusive = bool(exclusive)
        model = getattr(router, "model", None)
        if model is not None:
            check_same_tokenizer(self.base.tokenizer, model.tokenizer)

        # what emits a token
        if emit is not None and mode != "handoff":
            raise ValueError(
                f"emit={emit!r} is the emission rule of handoff mode; in {mode} mode the "
                "base writes the token: drop emit or use mode='handoff'"
            )
        if mode == "handoff" and not self.rerank:
            emit = emit or ("sample" if model is not None else "label")
            if emit not in EMIT_RULES:
                raise ValueError(f"unknown emission rule {emit!r}: use one of {EMIT_RULES}")
            if emit in ("sample", "argmax") and model is None:
                raise ValueError(
                    f"emit={emit!r} takes the token from the router's model, but "
                    f"{type(router).__name__} has none: give it model= (the RL model), or use "
                    "emit='label' (the base's own token that begins the label)"
                )
        self.emit = emit if mode == "handoff" and not self.rerank else None
        if self.rerank and model is None:
            raise ValueError(
                f"rerank needs a token model to rank tokens: give the {type(router).__name__} "
                "a model= (the RL model)"
            )

        # the task's tests
        needs = [
            what
            for what, on in (
                ("emit='label'", self.emit == "label"),
                ("exclusive=True", self.exclusive),
                ("unless_base", getattr(router, "unless_base", False)),
            )
            if on
        ]
        # the task's segment_start, else the router's own (a ModelRouter carries one)
        self.segment_start = getattr(task, "segment_start", None) or getattr(
            router, "segment_start", None
        )
        if needs and not callable(self.segment_start):
            raise ValueError(
                f"{', '.join(needs)} needs the task's segment_start: pass task= (e.g. the "
                "experiment's task, or the organism's PermutationChain)"
            )
        if task is not None and not callable(getattr(task, "can_begin", None)):
            raise TypeError(
                f"task= needs can_begin(prefix_text) -> labels ({type(task).__name__} has none)"
            )
        if getattr(router, "unless_base", False) and self.action == "steer":
            raise ValueError(
                "unless_base compares with the base's own next token, known only after its "
                "forward: use it in handoff mode or with the re-rank control, not in steer mode"
            )

        # vectors and their controls
        self.vectors: dict[Hashable, dict[Site, torch.Tensor]] | None = None
        if vectors is not None:
            if check_vectors:
                self._check_vector_provenance(vectors)
            groups = Steer(vectors).groups
            if any(k is None for k in groups):
                raise ValueError(
                    "every vector needs a label (the label the router fires): pass "
                    "{label: vector} or SteeringVectors with .label set"
                )
            Steer(groups).setup(self.base)
            if self.bias_only:
                groups = bias_only_vectors(groups)
            if self.random_vectors:
                groups = random_vectors_like(groups, self.control_seed)
            self.vectors = groups
        if (self.random_vectors or self.bias_only) and self.action != "steer":
            raise ValueError(
                f"random_vectors/bias_only change the added vector, but {self.action} adds "
                "none: use them with mode='steer' and rerank=False"
            )
        if self.action == "steer":
            if self.vectors is None:
                raise ValueError(
                    "steer mode adds the label's base-model vector: pass vectors= "
                    "({label: SteeringVector}), or use mode='handoff'"
                )
            Steer(self.vectors, coef=coef)  # validates coef against the labels

        # which labels may fire
        if labels is not None:
            labels = tuple(labels)
        else:
            # steer mode: the vectors' labels; handoff: what the router schedules
            labels = tuple(self.vectors) if self.action == "steer" else router_labels(router)
        if self.action == "steer" and labels is not None:
            missing = [x for x in labels if x not in self.vectors]
            if missing:
                raise ValueError(f"labels {missing} have no vector: give one per label")
        if task is not None and labels is not None and hasattr(task, "labels"):
            unknown = [x for x in labels if x not in tuple(task.labels)]
            if unknown:
                raise ValueError(
                    f"labels {unknown} are not labels of the task ({list(task.labels)})"
                )
        if self.exclusive and labels is None:
            raise ValueError(
                "an exclusive schedule masks the labels the router schedules: give labels= "
                "(or a router with .labels)"
            )
        self.labels: tuple[Hashable, ...] | None = labels

        site = getattr(router, "site", None)
        if site is not None:
            self.base.check_site(site)
            if self.action == "steer":
                early = [s for s in self.vectors_sites if exec_order(s) < exec_order(site)]
                if early:
                    raise ValueError(
                        f"the router reads {site} but the vectors are added at "
                        f"{[s.name for s in early]}, earlier in the forward pass: the decision "
                        "must come first; read at or before the steering site"
                    )

    @property
    def vectors_sites(self) -> list[Site]:
        return sorted({s for g in (self.vectors or {}).values() for s in g})

    def __repr__(self) -> str:
        flags = [
            k for k in ("rerank", "random_vectors", "bias_only", "exclusive") if getattr(self, k)
        ]
        emit = f", emit={self.emit}" if self.emit else ""
        return (
            f"HybridDecoder(mode={self.mode}{emit}, router={self.router!r}, labels={self.labels}, "
            f"coef={self.coef}, flags={flags or 'none'})"
        )

    def _check_vector_provenance(self, vectors: Any) -> None:
        if isinstance(vectors, Mapping):
            objs = list(vectors.values())
        elif isinstance(vectors, (list, tuple)):
            objs = list(vectors)
        else:
            objs = [vectors]
        for v in objs:
            if hasattr(v, "check") and getattr(v, "fingerprint", None):
                v.check(self.base)

    def replace(self, **changes: Any) -> HybridDecoder:
        """A new decoder with the same configuration except ``changes`` (e.g. ``rerank=True``)."""
        unknown = set(changes) - set(self._config)
        if unknown:
            raise TypeError(f"unknown settings {sorted(unknown)}: use {sorted(self._config)}")
        cfg = {**self._config, **changes}
        if "mode" in changes and "emit" not in changes and changes["mode"] != "handoff":
            cfg["emit"] = None
        return HybridDecoder(**cfg)

    def params(self) -> dict[str, Any]:
        """The settings a result records (JSON-ready)."""
        return dict(
            mode=self.mode,
            action=self.action,
            emit=self.emit,
            exclusive=self.exclusive,
            router=repr(self.router),
            labels=repr(self.labels),
            coef=repr(self.coef),
            rerank_k=self.rerank_k if self.rerank else None,
            random_vectors=self.random_vectors,
            bias_only=self.bias_only,
            control_seed=self.control_seed,
        )

    def generate(
        self,
        prompts: Sequence[str] | Sequence[Sequence[int]] | str,
        *,
        params: SamplingParams | None = None,
        n: int = UNSET,
        temperature: float = UNSET,
        top_p: float = UNSET,
        max_new_tokens: int = UNSET,
        stop: Sequence[str] | str = UNSET,
        seed: int = UNSET,
        batch_size: int = 16,
        progress: bool = True,
        use_cache: bool | str = True,
        eos_token_id: int | Sequence[int] | None = None,
        add_special_tokens: bool = True,
    ) -> HybridResult:
        """Decode ``n`` completions per prompt; arguments as in :func:`rlvr.generation.sampling.sample`
        (``params=`` or the loose keywords), except that ``temperature`` defaults to 0.

        Same seed -> same completions, independent of ``batch_size`` (up to float ties,
        as for :func:`rlvr.generation.sampling.sample`). ``use_cache`` chooses both models' KV cache
        as there (True, ``"static"``, ``"dynamic"``); ``use_cache=False`` recomputes both
        models on the whole prefix every token (the slow reference).
        """
        p = resolve_params(
            params,
            defaults={"temperature": 0.0},
            n=n,
            temperature=temperature,
            top_p=top_p,
            max_new_tokens=max_new_tokens,
            stop=stop,
            seed=seed,
        )
        run = HybridRun(self, p, use_cache=use_cache)
        samples = sample(
            self.base,
            prompts,
            params=p,
            controller=run,
            batch_size=batch_size,
            progress=progress,
            use_cache=use_cache,
            eos_token_id=eos_token_id,
            add_special_tokens=add_special_tokens,
        )
        return HybridResult.from_samples(
            samples, {**self.params(), **p.to_dict(), "use_cache": use_cache}
        )
