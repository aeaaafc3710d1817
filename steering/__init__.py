"""steering: the write side — steer with fitted vectors through the one generation loop.

``Steer(vectors, coef, positions, op)`` adds (or ablates) vectors at sites and chosen
positions; pass it as ``controller=`` to :func:`rlvr.generation.sampling.sample`, or wrap plain
forward passes with ``with steer.applied(handle): ...``. :mod:`steering.hybrid` holds the
hybrid decoder (scheduling alone) and its routers; :func:`recovery` the recovered gap.

Names are imported on first use, so ``import steering.config`` (and with it the ``rsteer``
command line) does not pull in torch.
"""

from __future__ import annotations

from rlvr.lazy import lazy_exports

# public name -> submodule that defines it
_EXPORTS = {
    "OPS": "steer",
    "POSITIONS": "positions",
    "Steer": "steer",
    # the hybrid decoder (scheduling alone): routers, modes, controls
    **{
        name: "hybrid"
        for name in (
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
            "TimingRandomRouter",
            "check_same_tokenizer",
            "router_quality",
        )
    },
}

# eager: the submodule ``steering.recovery`` shares its name with the function (numpy only)
from .recovery import Recovery, recovery  # noqa: E402

__all__ = [*_EXPORTS, "Recovery", "recovery"]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
