"""The hybrid decoder: the base writes every token, a router decides when to intervene.

Modules, one concern each:

- :mod:`.routers` — the router protocol and the built-in routers (the RL model, a probe on
  the base, the reference schedules, the random controls, stacks);
- :mod:`.decoder` — :class:`HybridDecoder`: configuration and validation, ``generate``;
- :mod:`.run` — one ``generate`` call as a controller of the one generation loop;
- :mod:`.texts` — each row's text, kept up to date incrementally;
- :mod:`.records` — what a run returns (events, per-step records);
- :mod:`.quality` — router quality against the ground-truth schedule;
- :mod:`.controls` — the vector controls of steer mode.
"""

from .controls import bias_only_vectors, random_vectors_like
from .decoder import HybridDecoder
from .quality import router_quality
from .records import HybridEvent, HybridGeneration, HybridResult
from .routers import (
    AnyPositionRandomRouter,
    EveryBoundaryRouter,
    FirstDecisionRouter,
    GroundTruthRouter,
    ModelRouter,
    ProbeRouter,
    Router,
    RouterStack,
    RouterView,
    TimingRandomRouter,
    check_same_tokenizer,
)

__all__ = [
    "AnyPositionRandomRouter",
    "EveryBoundaryRouter",
    "FirstDecisionRouter",
    "GroundTruthRouter",
    "HybridDecoder",
    "HybridEvent",
    "HybridGeneration",
    "HybridResult",
    "ModelRouter",
    "ProbeRouter",
    "Router",
    "RouterStack",
    "RouterView",
    "TimingRandomRouter",
    "bias_only_vectors",
    "check_same_tokenizer",
    "random_vectors_like",
    "router_quality",
]
