"""What identifies a model: architecture, sizes and a sampled hash of its weights.

One checkpoint has one :class:`Fingerprint` whichever adapter holds it (HF, nnsight or a
TransformerLens bridge), so vectors and activations fitted on it can be checked against
the model they are used with.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch

__all__ = ["Fingerprint", "canonical_parameters", "fingerprint_of"]


@dataclass(frozen=True)
class Fingerprint:
    """What identifies a model for the purpose of reusing vectors and activations.

    ``weights`` is a SHA-256 over every parameter's name, shape and a strided sample of
    its values, so a fine-tuned checkpoint of the same architecture differs.
    ``name`` is informational and not compared.
    """

    architecture: str
    n_layers: int
    d_model: int
    vocab_size: int
    weights: str
    name: str = ""

    def matches(self, other: Fingerprint) -> bool:
        a, b = asdict(self), asdict(other)
        a.pop("name")
        b.pop("name")
        return a == b

    def describe(self) -> str:
        label = f"{self.name} " if self.name else ""
        return (
            f"{label}[{self.architecture}, {self.n_layers} layers, d_model {self.d_model}, "
            f"weights {self.weights[:12]}]"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Fingerprint:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def canonical_parameters(model: torch.nn.Module):
    """``(name, parameter)`` pairs of a model under its Hugging Face names, each tensor once.

    A TransformerLens ``TransformerBridge`` wraps the HF modules in place (each wrapper keeps
    the original as ``_original_component``) and adds views of its own (GPT-2's fused
    ``c_attn`` also appears split into ``q``/``k``/``v``). Walking only the original
    components gives the same names and tensors as the plain HF model, so one checkpoint
    has one fingerprint whichever adapter holds it.
    """
    seen: set[int] = set()

    def walk(mod: torch.nn.Module, prefix: str):
        while hasattr(mod, "_original_component"):  # a TransformerBridge wrapper
            mod = mod._original_component
        for name, p in mod.named_parameters(recurse=False):
            if p is not None and id(p) not in seen:
                seen.add(id(p))
                yield prefix + name, p
        for name, child in mod.named_children():
            if child is not None:
                yield from walk(child, f"{prefix}{name}.")

    yield from walk(model, "")


def fingerprint_of(model: torch.nn.Module, n_layers: int, d_model: int) -> Fingerprint:
    """Fingerprint a torch model: architecture, sizes and a sampled hash of the weights."""
    h = hashlib.sha256()
    with torch.no_grad():
        for name, p in canonical_parameters(model):
            flat = p.detach().reshape(-1)
            step = max(1, flat.numel() // 4096)
            # rounded to bf16 so fp32 and bf16 loads of one checkpoint agree
            sample = flat[::step][:4096].to("cpu", torch.bfloat16).float().contiguous()
            h.update(name.encode())
            h.update(str(tuple(p.shape)).encode())
            h.update(sample.numpy().tobytes())
    cfg = getattr(model, "config", None)
    arch = (getattr(cfg, "architectures", None) or [type(model).__name__])[0]
    vocab = int(getattr(cfg, "vocab_size", 0) or 0)
    name = str(getattr(cfg, "_name_or_path", "") or "")
    return Fingerprint(arch, n_layers, d_model, vocab, h.hexdigest(), name)
