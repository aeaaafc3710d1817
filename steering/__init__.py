"""steering: the write side — steer with fitted vectors through the one generation loop.

``Steer(vectors, coef, positions, op)`` adds (or ablates) vectors at sites and chosen
positions; pass it as ``controller=`` to :func:`rlvr.sampling.sample`, or wrap plain
forward passes with ``with steer.applied(handle): ...``.
"""

from .steer import OPS, POSITIONS, Steer

__all__ = ["OPS", "POSITIONS", "Steer"]

# the hybrid decoder (scheduling alone): routers, modes, controls, recovery
from .hybrid import HybridDecoder, HybridEvent, HybridGeneration, HybridResult  # noqa: E402
from .recovery import Recovery, recovery  # noqa: E402
from .routers import ModelRouter, ProbeRouter, RandomRouter  # noqa: E402

__all__ += [
    "HybridDecoder",
    "HybridEvent",
    "HybridGeneration",
    "HybridResult",
    "ModelRouter",
    "ProbeRouter",
    "RandomRouter",
    "Recovery",
    "recovery",
]
