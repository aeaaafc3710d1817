"""Where RL changed the weights: update sparsity, update rank, and overlap across seeds.

Checkpoints are read tensor by tensor (large tensors in row blocks) by
:mod:`rlvr.measures.checkpoint_reader`, so two 7B checkpoints can be compared in CPU memory. A
checkpoint is a ``.safetensors`` file, or a directory holding ``model.safetensors`` or a
sharded set listed in ``model.safetensors.index.json``.

A parameter counts as unchanged when ``|b - a| <= tol`` after casting both to ``dtype``.
``dtype="bf16"`` with ``tol=1e-5`` follows Mukherjee et al. (2025, arXiv 2505.11711).
NaN entries always count as updated.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass

import torch

from .checkpoint_reader import (
    PathLike,
    Readers,
    blocks,
    check_same_architecture,
    natural_sorted,
    open_checkpoint,
)

__all__ = [
    "LayerUpdate",
    "MatrixUpdate",
    "SeedOverlap",
    "UpdateSparsity",
    "layer_of",
    "seed_overlap",
    "update_rank",
    "update_sparsity",
]

_CASTS = {
    "bf16": (torch.bfloat16, torch.float32),
    "fp16": (torch.float16, torch.float32),
    "fp32": (torch.float32, torch.float32),
    "fp64": (torch.float64, torch.float64),
}
_LAYER_RE = re.compile(r"(?:^|\.)(?:layers|layer|h|blocks|block)\.(\d+)(?:\.|$)")


def _check_dtype(dtype: object) -> tuple[torch.dtype, torch.dtype]:
    if not isinstance(dtype, str) or dtype not in _CASTS:
        raise ValueError(f"dtype={dtype!r} is not supported: use one of {sorted(_CASTS)}")
    return _CASTS[dtype]


def _check_tol(tol: object) -> float:
    if isinstance(tol, bool) or not isinstance(tol, int | float):
        raise TypeError(f"tol must be a non-negative float, got {type(tol).__name__} {tol!r}")
    if not (tol >= 0 and tol != float("inf")):
        raise ValueError(f"tol={tol} must be a finite number >= 0: pass e.g. tol=1e-5")
    return float(tol)


def _check_chunk(chunk_size: object) -> int:
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size={chunk_size!r} must be a positive int (elements per read)")
    return chunk_size


def _updated(
    a: torch.Tensor, b: torch.Tensor, casts: tuple[torch.dtype, torch.dtype], tol: float
) -> torch.Tensor:
    """Boolean mask of entries that changed from ``a`` to ``b``."""
    if not (a.is_floating_point() or b.is_floating_point()):
        return a != b
    cast, work = casts
    ta = a.to(cast).to(work)
    tb = b.to(cast).to(work)
    same = ta == tb
    if tol > 0:
        same |= (tb - ta).abs() <= tol
    return ~same


def layer_of(name: str) -> int | str:
    """Layer index parsed from a parameter name (``model.layers.3.``), else ``"other"``."""
    m = _LAYER_RE.search(name)
    return int(m.group(1)) if m else "other"


@dataclass(frozen=True)
class MatrixUpdate:
    """Updated share of one parameter tensor."""

    name: str
    shape: tuple[int, ...]
    n_params: int
    n_updated: int
    updated_share: float


@dataclass(frozen=True)
class LayerUpdate:
    """Updated share of all parameters in one layer (``"other"`` = outside the layer stack)."""

    layer: int | str
    n_params: int
    n_updated: int
    updated_share: float


@dataclass(frozen=True)
class UpdateSparsity:
    """Share of parameters left unchanged (``sparsity``) and changed (``updated_share``)."""

    dtype: str
    tol: float
    n_params: int
    n_unchanged: int
    sparsity: float
    updated_share: float
    per_matrix: tuple[MatrixUpdate, ...]
    per_layer: tuple[LayerUpdate, ...]


def _share(part: int, total: int) -> float:
    return part / total if total else 0.0


def update_sparsity(
    a: PathLike,
    b: PathLike,
    *,
    tol: float = 1e-5,
    dtype: str = "bf16",
    chunk_size: int = 1 << 24,
) -> UpdateSparsity:
    """Share of parameters unchanged between checkpoints ``a`` and ``b``.

    Reads at most ``chunk_size`` elements per tensor at a time.
    """
    casts = _check_dtype(dtype)
    tol = _check_tol(tol)
    chunk_size = _check_chunk(chunk_size)
    cks = [open_checkpoint(a), open_checkpoint(b)]
    check_same_architecture(cks)
    per_matrix: list[MatrixUpdate] = []
    layers: dict[int | str, list[int]] = {}
    with ExitStack() as stack:
        readers = Readers(stack)
        for name in natural_sorted(cks[0].files):
            n_params = 0
            n_updated = 0
            for ta, tb in blocks(readers, cks, name, chunk_size):
                n_params += ta.numel()
                n_updated += int(_updated(ta, tb, casts, tol).sum())
            per_matrix.append(
                MatrixUpdate(
                    name, cks[0].shapes[name], n_params, n_updated, _share(n_updated, n_params)
                )
            )
            acc = layers.setdefault(layer_of(name), [0, 0])
            acc[0] += n_params
            acc[1] += n_updated
    order = sorted(k for k in layers if isinstance(k, int)) + (
        ["other"] if "other" in layers else []
    )
    per_layer = tuple(
        LayerUpdate(k, layers[k][0], layers[k][1], _share(layers[k][1], layers[k][0]))
        for k in order
    )
    total = sum(m.n_params for m in per_matrix)
    updated = sum(m.n_updated for m in per_matrix)
    return UpdateSparsity(
        dtype=dtype,
        tol=tol,
        n_params=total,
        n_unchanged=total - updated,
        sparsity=_share(total - updated, total),
        updated_share=_share(updated, total),
        per_matrix=tuple(per_matrix),
        per_layer=per_layer,
    )


def update_rank(
    a: PathLike,
    b: PathLike,
    *,
    dtype: str = "fp32",
    tol: float | None = None,
    names: Iterable[str] | None = None,
) -> dict[str, float]:
    """``rank(b - a) / min(m, n)`` for every 2-D parameter (or only those in ``names``).

    ``tol`` is the absolute singular-value threshold of ``torch.linalg.matrix_rank``; ``None``
    uses its default relative threshold.
    """
    cast, work = _check_dtype(dtype)
    if tol is not None:
        tol = _check_tol(tol)
    cks = [open_checkpoint(a), open_checkpoint(b)]
    check_same_architecture(cks)
    matrices = [n for n in natural_sorted(cks[0].files) if len(cks[0].shapes[n]) == 2]
    if names is not None:
        if isinstance(names, str):
            raise TypeError("names must be a collection of parameter names, not one string")
        wanted = list(names)
        unknown = [n for n in wanted if n not in cks[0].files]
        if unknown:
            raise ValueError(f"names not in the checkpoint: {unknown[:5]}: check the spelling")
        not_2d = [n for n in wanted if len(cks[0].shapes[n]) != 2]
        if not_2d:
            raise ValueError(f"names that are not 2-D matrices: {not_2d[:5]}: drop them")
        keep = set(wanted)
        matrices = [n for n in matrices if n in keep]
    out: dict[str, float] = {}
    with ExitStack() as stack:
        readers = Readers(stack)
        for name in matrices:
            ta, tb = (readers.handle(ck.files[name]).get_tensor(name) for ck in cks)
            delta = tb.to(cast).to(work) - ta.to(cast).to(work)
            m, n = delta.shape
            if min(m, n) == 0:
                continue
            if tol is None:
                rank = torch.linalg.matrix_rank(delta)
            else:
                rank = torch.linalg.matrix_rank(delta, atol=tol, rtol=0.0)
            out[name] = int(rank) / min(m, n)
    return out


@dataclass(frozen=True)
class SeedOverlap:
    """Overlap of the updated-parameter sets I1 (base -> rl1) and I2 (base -> rl2).

    ``overlap_1 = |I1 & I2| / |I1|`` with chance level ``chance_1 = |I2| / N``;
    ``overlap_2 = |I1 & I2| / |I2|`` with chance level ``chance_2 = |I1| / N``.
    An overlap is NaN when its denominator set is empty.
    """

    dtype: str
    tol: float
    n_params: int
    n_updated_1: int
    n_updated_2: int
    n_both: int
    overlap_1: float
    overlap_2: float
    chance_1: float
    chance_2: float


def seed_overlap(
    base: PathLike,
    rl1: PathLike,
    rl2: PathLike,
    *,
    tol: float = 1e-5,
    dtype: str = "bf16",
    chunk_size: int = 1 << 24,
) -> SeedOverlap:
    """How much two RL runs from the same base update the same parameter positions."""
    casts = _check_dtype(dtype)
    tol = _check_tol(tol)
    chunk_size = _check_chunk(chunk_size)
    cks = [open_checkpoint(base), open_checkpoint(rl1), open_checkpoint(rl2)]
    check_same_architecture(cks)
    n_params = n1 = n2 = n_both = 0
    with ExitStack() as stack:
        readers = Readers(stack)
        for name in natural_sorted(cks[0].files):
            for t0, t1, t2 in blocks(readers, cks, name, chunk_size):
                m1 = _updated(t0, t1, casts, tol)
                m2 = _updated(t0, t2, casts, tol)
                n_params += t0.numel()
                n1 += int(m1.sum())
                n2 += int(m2.sum())
                n_both += int((m1 & m2).sum())
    nan = float("nan")
    return SeedOverlap(
        dtype=dtype,
        tol=tol,
        n_params=n_params,
        n_updated_1=n1,
        n_updated_2=n2,
        n_both=n_both,
        overlap_1=n_both / n1 if n1 else nan,
        overlap_2=n_both / n2 if n2 else nan,
        chance_1=_share(n2, n_params),
        chance_2=_share(n1, n_params),
    )
