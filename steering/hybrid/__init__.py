"""The hybrid decoder: the base writes every token, a router decides when to intervene.

Modules, one concern each:

- :mod:`.routers` — the router protocol, the checks routers share, stacks of routers;
- :mod:`.real_routers` — the RL model and a probe on the base as routers;
- :mod:`.reference_routers` — the reference schedules (ground truth, every boundary, the
  first decision only);
- :mod:`.random_routers` — the random controls (timing-true, any position);
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
from .random_routers import AnyPositionRandomRouter, TimingRandomRouter
from .real_routers import ModelRouter, ProbeRouter
from .records import HybridEvent, HybridGeneration, HybridResult
from .reference_routers import EveryBoundaryRouter, FirstDecisionRouter, GroundTruthRouter
from .routers import Router, RouterStack, RouterView, check_same_tokenizer

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
