"""Vector controls for steer mode: random directions of matched norm, and bias only."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import torch

from probes.sites import Site

__all__ = ["bias_only_vectors", "random_vectors_like"]


def random_vectors_like(
    vectors: Mapping[Hashable, Mapping[Site, torch.Tensor]], seed: int = 0
) -> dict[Hashable, dict[Site, torch.Tensor]]:
    """Random directions with the same norm as each label's vector at each site (seeded)."""
    g = torch.Generator().manual_seed(int(seed))
    out: dict[Hashable, dict[Site, torch.Tensor]] = {}
    for label, sites in vectors.items():
        out[label] = {}
        for site in sorted(sites):
            v = sites[site]
            r = torch.randn(v.shape[0], generator=g, dtype=torch.float64)
            out[label][site] = (r / r.norm() * float(v.double().norm())).to(v.dtype)
    return out


def bias_only_vectors(
    vectors: Mapping[Hashable, Mapping[Site, torch.Tensor]],
) -> dict[Hashable, dict[Site, torch.Tensor]]:
    """Every label gets one shared vector: at each site, the mean of the labels' vectors there."""
    sites = sorted({s for g in vectors.values() for s in g})
    mean = {s: torch.stack([g[s] for g in vectors.values() if s in g]).mean(0) for s in sites}
    return {label: dict(mean) for label in vectors}
