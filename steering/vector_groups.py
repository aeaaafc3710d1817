"""The one form :class:`steering.Steer` works with, and the function that makes it.

Inside, steering vectors are always a :data:`VectorGroups`: ``label -> {Site: vector}``,
each vector a 1-D float32 CPU tensor of width ``d_model``. A label is one vector that
fires as a whole, at all of its sites at once (``None`` is the label of an unlabelled
vector). :func:`as_vector_groups` turns every accepted input into it, once, at the edge:

- a mapping ``Site -> tensor (d_model,)`` (keys may be anything :meth:`probes.Site.parse`
  reads: ``Site(3)``, ``3``, ``"3.resid_pre"``, ``"blocks.3.hook_resid_post"``);
- an object with ``vectors: dict[Site, Tensor]`` (e.g. :class:`probes.SteeringVector`) or
  with ``.site`` and ``.vector``; its ``.label``, when it has one, names the group;
- a list of such objects, grouped by their ``.label`` (one label may span several sites);
- a mapping ``label -> any of the above`` (a list there is merged into that one label).

A site given twice for one label, a vector that is not 1-D or has NaN/inf entries, and
any other input are refused with what to give instead.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import torch

from probes.sites import Site

__all__ = ["VectorGroups", "as_vector_groups"]

VectorGroups = dict[Hashable, dict[Site, torch.Tensor]]
"""label -> {Site: 1-D float32 CPU vector}: the one form Steer works with."""


def as_vector_groups(vectors: Any) -> VectorGroups:
    """Turn any accepted form of steering vectors (module docstring) into ``label -> {Site: v}``."""
    if _obj_sites(vectors) is not None:  # one SteeringVector-like object
        return {getattr(vectors, "label", None): _group(vectors, None)}
    if isinstance(vectors, Mapping) and vectors:
        site_keys = [_is_site_key(k) for k in vectors]
        if all(site_keys):
            return {None: _site_map(vectors, None)}
        if any(site_keys):
            raise ValueError(
                "a vectors mapping must have only sites as keys ({Site: tensor}) or only "
                f"labels ({{label: vectors}}); got {list(vectors)!r}"
            )
        return {label: _group(spec, label) for label, spec in vectors.items()}
    if isinstance(vectors, (list, tuple)) and vectors:
        out: VectorGroups = {}
        for obj in vectors:
            if _obj_sites(obj) is None:
                raise TypeError(
                    f"a list of vectors must hold objects with .vectors or .site/.vector, "
                    f"got a {type(obj).__name__}"
                )
            label = getattr(obj, "label", None)
            _merge(out.setdefault(label, {}), _group(obj, label), label)
        return out
    if isinstance(vectors, (Mapping, list, tuple)):
        raise ValueError("no steering vectors given")
    raise TypeError(
        f"cannot read steering vectors from a {type(vectors).__name__}: give {{Site: tensor}}, "
        "a SteeringVector-like object, a list of them, or {label: vectors}"
    )


def _group(spec: Any, label: Any) -> dict[Site, torch.Tensor]:
    """Everything given for one label, as site -> vector."""
    sites = _obj_sites(spec)
    if sites is not None:
        return _site_map(sites, label)
    if isinstance(spec, Mapping) and spec and all(_is_site_key(k) for k in spec):
        return _site_map(spec, label)
    if isinstance(spec, (list, tuple)) and spec:
        out: dict[Site, torch.Tensor] = {}
        for obj in spec:
            _merge(out, _group(obj, label), label)
        return out
    raise TypeError(
        f"cannot read steering vectors for {label!r} from a {type(spec).__name__}: give "
        "{Site: tensor}, an object with .vectors or .site/.vector, or a list of those"
    )


def _obj_sites(obj: Any) -> dict | None:
    """The site -> vector mapping of a vector-like object, or None if it is not one."""
    vecs = getattr(obj, "vectors", None)
    if isinstance(vecs, Mapping):
        return dict(vecs)
    if hasattr(obj, "vector") and hasattr(obj, "site"):
        return {obj.site: obj.vector}
    return None


def _is_site_key(k: Any) -> bool:
    if isinstance(k, Site):
        return True
    if isinstance(k, bool):
        return False
    if isinstance(k, (int, tuple, str)):
        try:
            Site.parse(k)
        except (TypeError, ValueError):
            return False
        return True
    return False


def _site_map(m: Mapping, label: Any) -> dict[Site, torch.Tensor]:
    out: dict[Site, torch.Tensor] = {}
    for k, v in m.items():
        s = Site.parse(k)
        if s in out:
            raise ValueError(f"vector {label!r} is given twice at {s}")
        out[s] = _as_vector(v, f"vector {label!r} at {s}")
    return out


def _merge(into: dict[Site, torch.Tensor], more: dict[Site, torch.Tensor], label: Any) -> None:
    for s, v in more.items():
        if s in into:
            raise ValueError(f"vector {label!r} is given twice at {s}")
        into[s] = v


def _as_vector(v: Any, where: str) -> torch.Tensor:
    t = v.detach() if isinstance(v, torch.Tensor) else torch.as_tensor(v)
    t = t.to("cpu", torch.float32)
    if t.ndim != 1:
        raise ValueError(f"{where}: a steering vector must be 1-D (d_model,), got {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{where}: the vector has NaN/inf entries")
    return t
