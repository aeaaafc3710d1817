"""steering: the write side — steer with fitted vectors through the one generation loop.

``Steer(vectors, coef, positions, op)`` adds (or ablates) vectors at sites and chosen
positions; pass it as ``controller=`` to :func:`rlvr.sampling.sample`, or wrap plain
forward passes with ``with steer.applied(handle): ...``. :mod:`steering.hybrid` holds the
hybrid decoder (scheduling alone) and its routers; :func:`recovery` the recovered gap.
"""

from .steer import OPS, POSITIONS, Steer

__all__ = ["OPS", "POSITIONS", "Steer"]

# the hybrid decoder (scheduling alone): routers, modes, controls, recovery
from .hybrid import (  # noqa: E402
    AnyPositionRandomRouter,
    EveryBoundaryRouter,
    FirstDecisionRouter,
    GroundTruthRouter,
    HybridDecoder,
    HybridEvent,
    HybridGeneration,
    HybridResult,
    ModelRouter,
    ProbeRouter,
    Router,
    RouterStack,
    TimingRandomRouter,
    check_same_tokenizer,
    router_quality,
)
from .recovery import Recovery, recovery  # noqa: E402

__all__ += [
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
    "Recovery",
    "Router",
    "RouterStack",
    "TimingRandomRouter",
    "check_same_tokenizer",
    "recovery",
    "router_quality",
]
