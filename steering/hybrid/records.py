"""What a hybrid run returns: per generation the text, the router's firings and, when the
decoder knows the task, one record per step for router quality."""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from rlvr.generation.sampling import Samples

__all__ = ["HybridEvent", "HybridGeneration", "HybridResult"]

LOG_KEY = "hybrid"
STEER_KEY = "hybrid_steer"
STEPS_KEY = "hybrid_steps"
UNAVOIDABLE_KEY = "hybrid_unavoidable"
"""``Samples.extra`` keys: firings, steering records, per-step records ``(step, ground
truth label, fired label, {eligible label: router score})``, and the number of steps where
an exclusive schedule found no likely token that begins no unscheduled label (the base's
own token stood)."""


class HybridEvent(NamedTuple):
    """One intervention: at generated token ``step`` (0-based), decided at absolute
    ``position`` (= prompt length + step - 1, whose logits chose the token), ``label``
    fired with ``mode`` (``"steer"``, ``"handoff"`` or ``"rerank"``); ``token`` is the
    token emitted at that step."""

    step: int
    position: int
    label: Hashable
    mode: str
    token: int


@dataclass
class HybridGeneration:
    """One completion of the hybrid: text, tokens, and what the router did."""

    prompt_index: int
    sample_index: int
    text: str
    token_ids: list[int]
    log: list[HybridEvent]
    finish_reason: str
    steps: list[tuple] = field(default_factory=list)

    @property
    def n_tokens(self) -> int:
        return len(self.token_ids)

    @property
    def n_fired(self) -> int:
        return len(self.log)

    @property
    def steered_fraction(self) -> float:
        """Share of this completion's tokens the router touched (steered, handed off, re-ranked)."""
        return self.n_fired / self.n_tokens if self.n_tokens else 0.0


@dataclass
class HybridResult:
    """All completions of one :meth:`HybridDecoder.generate` call (rows prompt by prompt)."""

    generations: list[HybridGeneration]
    samples: Samples
    params: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.generations)

    @property
    def texts(self) -> list[str]:
        return [g.text for g in self.generations]

    @property
    def prompt_index(self) -> list[int]:
        """The prompt of each completion (as ``Samples.prompt_index``)."""
        return [g.prompt_index for g in self.generations]

    @property
    def steered_fraction(self) -> float:
        """Tokens touched / tokens generated, over every completion (the firing rate)."""
        total = sum(g.n_tokens for g in self.generations)
        return sum(g.n_fired for g in self.generations) / total if total else 0.0

    @property
    def label_counts(self) -> dict[Hashable, int]:
        return dict(Counter(e.label for g in self.generations for e in g.log))

    @property
    def label_shares(self) -> dict[Hashable, float]:
        """Share of firings per label (empty when nothing fired)."""
        c = self.label_counts
        total = sum(c.values())
        return {k: v / total for k, v in c.items()} if total else {}

    @property
    def eligible_rates(self) -> dict[Hashable, float]:
        """Per label: firings / positions where it could begin (from the per-step records,
        which exist when the decoder was given a task), in the order of the labels' names:
        what the timing control matches, and the order it draws them in."""
        fired: Counter = Counter()
        eligible: Counter = Counter()
        for g in self.generations:
            for _, _, d, scores in g.steps:
                eligible.update(scores.keys())
                if d is not None and d in scores:
                    fired[d] += 1
        return {k: fired[k] / eligible[k] for k in sorted(eligible, key=str)}

    def by_prompt(self) -> list[list[str]]:
        """Texts grouped per prompt."""
        return self.samples.by_prompt()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (labels as strings)."""
        return {
            "params": {
                k: (v if isinstance(v, (int, float, str, bool, type(None))) else repr(v))
                for k, v in self.params.items()
            },
            "steered_fraction": self.steered_fraction,
            "label_shares": {str(k): v for k, v in self.label_shares.items()},
            "generations": [
                {
                    "prompt_index": g.prompt_index,
                    "sample_index": g.sample_index,
                    "text": g.text,
                    "finish_reason": g.finish_reason,
                    "steered_fraction": g.steered_fraction,
                    "log": [[e.step, e.position, str(e.label), e.mode, e.token] for e in g.log],
                }
                for g in self.generations
            ],
        }

    @classmethod
    def from_samples(cls, samples: Samples, params: dict[str, Any]) -> HybridResult:
        gens = []
        for r in range(len(samples)):
            extra = samples.extra[r] if r < len(samples.extra) else {}
            gens.append(
                HybridGeneration(
                    prompt_index=samples.prompt_index[r],
                    sample_index=samples.sample_index[r],
                    text=samples.texts[r],
                    token_ids=samples.token_ids[r],
                    log=[HybridEvent(*e) for e in extra.get(LOG_KEY, [])],
                    finish_reason=samples.finish_reasons[r],
                    steps=list(extra.get(STEPS_KEY, [])),
                )
            )
        return cls(gens, samples, params)
