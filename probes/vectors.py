"""SteeringVector: per-site tensors with the record of how they were made.

Saved as one safetensors file whose header metadata holds the provenance as JSON
(written atomically). Loading onto a model whose fingerprint or width differs is
refused with a message naming both models.

llama.cpp control vectors
-------------------------
:meth:`SteeringVector.export_gguf` writes the control-vector GGUF that llama.cpp loads
with ``--control-vector`` / ``--control-vector-scaled`` (the format repeng's
``export_gguf`` writes): ``general.architecture = "controlvector"``, the string
``controlvector.model_hint`` and the integer ``controlvector.layer_count`` (how many
directions the file holds), and one float32 tensor ``direction.{N}`` of width
``d_model`` per layer. llama.cpp adds ``direction.N`` to the output of decoder layer N
(0-based, after the layer's last residual add) at every position, prompt included, so

- ``Site(N, "resid_post")`` is written as ``direction.N``, and
  ``Site(N, "resid_pre")`` (the same tensor as ``resid_post`` of N - 1) as
  ``direction.{N-1}``; two sites that are one tensor are summed, as steering both would;
- llama.cpp never steers the output of layer 0 (it has no ``direction.0``), so a vector
  at ``Site(0, "resid_post")``, ``Site(0, "resid_pre")`` or ``Site(1, "resid_pre")`` is
  refused rather than dropped;
- the file holds ``coef * v``: what ``Steer(vec, coef, positions="all")`` adds, which is
  what llama.cpp adds at scale 1 (its own ``--control-vector-scaled`` scale multiplies it).

:meth:`SteeringVector.from_gguf` reads such a file back (``direction.N`` ->
``Site(N, "resid_post")``); this project's provenance travels in an extra
``rsteer.vector`` string that llama.cpp ignores.
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
from .store import atomic_path, atomic_save_tensors

_META_KEY = "rsteer.vector"
_CV = "controlvector"


def _model_hint(fingerprint: dict[str, Any]) -> str:
    """llama.cpp / repeng's model hint (the HF ``model_type``) from a fingerprint's class name."""
    arch = str(fingerprint.get("architecture", ""))
    for suffix in ("ForCausalLM", "LMHeadModel", "Model"):
        if arch.endswith(suffix):
            return arch[: -len(suffix)].lower()
    return arch.lower()


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

    # -- llama.cpp control vectors (GGUF) -------------------------------------------------
    def gguf_directions(self, coef: float = 1.0) -> dict[int, torch.Tensor]:
        """llama.cpp layer index -> ``coef * v``, per the mapping in the module docstring."""
        if not isinstance(coef, (int, float)) or isinstance(coef, bool) or coef != coef:
            raise ValueError(f"coef must be a finite number, got {coef!r}")
        if coef in (float("inf"), float("-inf")):
            raise ValueError(f"coef must be a finite number, got {coef!r}")
        out: dict[int, torch.Tensor] = {}
        for site, v in sorted(self.vectors.items()):
            n = site.layer if site.kind == "resid_post" else site.layer - 1
            if n < 1:
                raise ValueError(
                    f"llama.cpp cannot steer {site} (the output of layer {max(n, 0)} or the "
                    "embeddings): its control vectors start at direction.1, the output of "
                    "layer 1; fit the vector at a later site"
                )
            out[n] = out[n] + coef * v if n in out else coef * v
        return out

    def export_gguf(
        self, path: str | Path, *, coef: float = 1.0, model_hint: str | None = None
    ) -> Path:
        """Write a llama.cpp control-vector GGUF (``.gguf`` added if missing), atomically.

        ``coef`` scales the stored directions (llama.cpp adds them at scale 1 unless told
        otherwise); ``model_hint`` defaults to the fitted model's type (``llama``,
        ``qwen2``, ``gpt2``...) read from the fingerprint. See the module docstring for
        the layer numbering.
        """
        import gguf
        import numpy as np

        dirs = self.gguf_directions(coef)
        hint = model_hint if model_hint is not None else _model_hint(self.fingerprint)
        if not isinstance(hint, str) or not hint:
            raise ValueError(
                "no model hint: this vector has no fingerprint, pass model_hint='llama' "
                "(the model's type)"
            )
        p = Path(path)
        if p.suffix != ".gguf":
            p = p.with_name(p.name + ".gguf")
        meta = {**self.to_meta(), "gguf_coef": float(coef)}
        with atomic_path(p) as tmp:
            w = gguf.GGUFWriter(tmp, _CV)
            w.add_string(f"{_CV}.model_hint", hint)
            w.add_uint32(f"{_CV}.layer_count", len(dirs))
            w.add_string(_META_KEY, json.dumps(meta))
            for n, v in dirs.items():
                w.add_tensor(f"direction.{n}", v.numpy().astype(np.float32))
            w.write_header_to_file()
            w.write_kv_data_to_file()
            w.write_tensors_to_file()
            w.close()
        return p

    @classmethod
    def from_gguf(cls, path: str | Path, label: str | None = None) -> SteeringVector:
        """Read a llama.cpp / repeng control-vector GGUF: ``direction.N`` -> ``Site(N)``.

        The directions are returned as stored (already scaled by the ``coef`` they were
        exported with, recorded in ``extra["gguf_coef"]``). A file written by
        :meth:`export_gguf` keeps its label, method and fingerprint; any other gets
        ``label`` (default: the file name), method ``"gguf"`` and no fingerprint, so
        loading it onto a model checks only the width and layers.
        """
        import gguf

        p = Path(path)
        if not p.exists():
            raise FileNotFoundError(f"no control-vector file at {p}")
        try:
            reader = gguf.GGUFReader(str(p))
        except Exception as e:  # gguf raises plain ValueErrors/struct errors on junk
            raise ValueError(f"{p} is not a readable GGUF file ({e})") from e

        def field(key: str):
            f = reader.get_field(key)
            return None if f is None else f.contents()

        arch = field("general.architecture")
        if arch != _CV:
            raise ValueError(
                f"{p} is a GGUF file of architecture {arch!r}, not a control vector "
                f"({_CV!r}): give a file written by export_gguf, repeng or llama.cpp"
            )
        vectors: dict[Site, torch.Tensor] = {}
        for t in reader.tensors:
            head, _, idx = t.name.partition(".")
            if head != "direction" or not idx.isdigit():
                raise ValueError(f"{p} has a tensor {t.name!r}: expected only direction.N")
            vectors[Site(int(idx))] = torch.tensor(t.data, dtype=torch.float32).reshape(-1)
        if not vectors:
            raise ValueError(f"{p} holds no direction.N tensors")
        raw = field(_META_KEY)
        meta = json.loads(raw) if raw else {}
        extra = {**meta.get("extra", {}), "model_hint": field(f"{_CV}.model_hint")}
        if meta:
            extra["gguf_coef"] = meta.get("gguf_coef", 1.0)
        return cls(
            vectors,
            label or meta.get("label") or p.stem,
            meta.get("method", "gguf"),
            meta.get("fingerprint", {}),
            meta.get("pooling"),
            meta.get("baseline"),
            meta.get("data_hash"),
            meta.get("n_examples", {}),
            extra,
        )
