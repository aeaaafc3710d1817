"""SteeringVector: per-site tensors with the record of how they were made.

Saved as one safetensors file whose header metadata holds the provenance as JSON
(written atomically). Loading onto a model whose fingerprint or width differs is
refused with a message naming both models.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from .handles import Fingerprint, ModelHandle, fingerprint_of, wrap
from .sites import Site
from .store import atomic_save_tensors

_META_KEY = "rsteer.vector"


@dataclass
class SteeringVector:
    """Vectors for one label at one or more sites, with provenance.

    ``vectors[site]`` has shape (d_model,). ``fingerprint`` is the model the vector was
    fitted on (a :class:`Fingerprint` dict); ``method`` e.g. ``"diffmean"``; ``baseline``
    what was subtracted; ``data_hash`` the traces it came from; ``n_examples`` the row
    counts used.
    """

    vectors: dict[Site, torch.Tensor]
    label: str
    method: str
    fingerprint: dict[str, Any] = field(default_factory=dict)
    pooling: str | None = None
    baseline: str | None = None
    data_hash: str | None = None
    n_examples: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.vectors:
            raise ValueError("a SteeringVector needs at least one site")
        self.vectors = {Site.parse(s): v.detach().float().cpu() for s, v in self.vectors.items()}
        widths = {v.shape[-1] for v in self.vectors.values()}
        if len(widths) != 1 or any(v.ndim != 1 for v in self.vectors.values()):
            raise ValueError("every site's vector must be 1-D with the same width")
        for s, v in self.vectors.items():
            if not torch.isfinite(v).all():
                raise ValueError(f"the vector at {s} has NaN/inf entries")

    @property
    def sites(self) -> list[Site]:
        return sorted(self.vectors)

    @property
    def site(self) -> Site:
        if len(self.vectors) != 1:
            raise ValueError(f"this vector has {len(self.vectors)} sites: index it by site")
        return next(iter(self.vectors))

    @property
    def vector(self) -> torch.Tensor:
        return self.vectors[self.site]

    @property
    def d_model(self) -> int:
        return next(iter(self.vectors.values())).shape[-1]

    @property
    def norms(self) -> dict[str, float]:
        return {s.name: float(v.norm()) for s, v in sorted(self.vectors.items())}

    def __getitem__(self, site: Site | str) -> torch.Tensor:
        s = Site.parse(site)
        if s not in self.vectors:
            have = ", ".join(x.name for x in self.sites)
            raise KeyError(f"no vector at {s}: this one has {have}")
        return self.vectors[s]

    def scaled(self, coef: float) -> SteeringVector:
        return SteeringVector(
            {s: v * coef for s, v in self.vectors.items()},
            self.label,
            self.method,
            self.fingerprint,
            self.pooling,
            self.baseline,
            self.data_hash,
            self.n_examples,
            {**self.extra, "scaled": coef},
        )

    # -- checks ---------------------------------------------------------------------------
    def check(self, model: ModelHandle | Any) -> None:
        """Refuse a model of another width or fingerprint (the message names both)."""
        if isinstance(model, torch.nn.Module) and hasattr(model, "config"):
            # a bare HF model: its weights are all the check needs (no tokenizer)
            n_layers, d_model = model.config.num_hidden_layers, model.config.hidden_size
            theirs = fingerprint_of(model, n_layers, d_model)
        else:
            handle = wrap(model)
            n_layers, d_model, theirs = handle.n_layers, handle.d_model, handle.fingerprint
        mine = Fingerprint.from_dict(self.fingerprint) if self.fingerprint else None
        if self.d_model != d_model:
            raise ValueError(
                f"vector {self.label!r} has width {self.d_model} (fitted on "
                f"{mine.describe() if mine else 'an unknown model'}) but the model "
                f"{theirs.describe()} has d_model {d_model}: fit a vector on this model"
            )
        for s in self.vectors:
            s.check(n_layers)
        if mine is not None and not mine.matches(theirs):
            raise ValueError(
                f"vector {self.label!r} was fitted on {mine.describe()}, not on "
                f"{theirs.describe()}: fit it on this model, or pass check=False to "
                "load it anyway (e.g. to test a base-model vector on an RL model)"
            )

    # -- files ----------------------------------------------------------------------------
    def to_meta(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "method": self.method,
            "fingerprint": self.fingerprint,
            "pooling": self.pooling,
            "baseline": self.baseline,
            "data_hash": self.data_hash,
            "n_examples": self.n_examples,
            "norms": self.norms,
            "extra": self.extra,
            "sites": [s.name for s in self.sites],
            "format": 1,
        }

    def save(self, path: str | Path) -> Path:
        """Write ``path`` (``.safetensors`` added if missing) atomically."""
        p = Path(path)
        if p.suffix != ".safetensors":
            p = p.with_name(p.name + ".safetensors")
        tensors = {s.name: v.contiguous() for s, v in self.vectors.items()}
        atomic_save_tensors(p, tensors, metadata={_META_KEY: json.dumps(self.to_meta())})
        return p

    @classmethod
    def load(cls, path: str | Path, model: Any = None, check: bool = True) -> SteeringVector:
        """Read a vector file; with ``model``, refuse it if it was fitted on another model."""
        p = Path(path)
        if not p.exists() and Path(str(p) + ".safetensors").exists():
            p = Path(str(p) + ".safetensors")
        if not p.exists():
            raise FileNotFoundError(f"no vector file at {p}")
        try:
            with safe_open(str(p), framework="pt") as f:
                meta_raw = (f.metadata() or {}).get(_META_KEY)
                tensors = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as e:  # safetensors raises its own error types
            raise ValueError(f"{p} is not a readable safetensors file ({e})") from e
        if meta_raw is None:
            raise ValueError(
                f"{p} holds tensors but no steering-vector metadata: it was not "
                "written by SteeringVector.save"
            )
        meta = json.loads(meta_raw)
        vec = cls(
            {Site.parse(k): v for k, v in tensors.items()},
            meta["label"],
            meta["method"],
            meta.get("fingerprint", {}),
            meta.get("pooling"),
            meta.get("baseline"),
            meta.get("data_hash"),
            meta.get("n_examples", {}),
            meta.get("extra", {}),
        )
        if model is not None and check:
            vec.check(model)
        return vec
