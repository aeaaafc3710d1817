"""Sites: where in the network a vector is read or written.

One convention, named the TransformerLens way, mapped to every backend here and
nowhere else:

- ``Site(l, "resid_pre")``  = ``blocks.{l}.hook_resid_pre``  = the input of decoder layer l
  = ``output_hidden_states[l]`` of a Hugging Face model.
- ``Site(l, "resid_post")`` = ``blocks.{l}.hook_resid_post`` = the output of decoder layer l
  = ``output_hidden_states[l + 1]`` (for the last layer HF applies the final norm to
  ``hidden_states[-1]``; the site is the un-normed residual, as in TransformerLens).

So ``resid_pre`` of layer l is ``resid_post`` of layer l - 1: a vector read at
``Site(l, "resid_post")`` and written at ``Site(l + 1, "resid_pre")`` lands on the same
activation. Writing where you read needs no off-by-one bookkeeping.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering
from typing import Literal

import torch

SiteKind = Literal["resid_pre", "resid_post"]
SITE_KINDS: tuple[str, ...] = ("resid_pre", "resid_post")
_NAME = re.compile(r"^blocks\.(\d+)\.hook_(resid_pre|resid_post)$")


@total_ordering
@dataclass(frozen=True)
class Site:
    """A residual-stream position: ``Site(layer, "resid_pre" | "resid_post")``."""

    layer: int
    kind: SiteKind = "resid_post"

    def __post_init__(self) -> None:
        if isinstance(self.layer, bool) or not isinstance(self.layer, int):
            raise TypeError(f"Site layer must be an int, got {self.layer!r}")
        if self.layer < 0:
            raise ValueError(f"Site layer must be >= 0, got {self.layer}")
        if self.kind not in SITE_KINDS:
            raise ValueError(f"unknown site kind {self.kind!r}: use one of {', '.join(SITE_KINDS)}")

    @property
    def name(self) -> str:
        """TransformerLens hook name, e.g. ``blocks.3.hook_resid_post``."""
        return f"blocks.{self.layer}.hook_{self.kind}"

    def __str__(self) -> str:
        return self.name

    def __lt__(self, other: Site) -> bool:
        """Depth order: layer by layer, ``resid_pre`` before ``resid_post``."""
        if not isinstance(other, Site):
            return NotImplemented
        return (self.layer, self.kind == "resid_post") < (other.layer, other.kind == "resid_post")

    @classmethod
    def parse(cls, spec: str | Site | tuple) -> Site:
        """Accept a Site, ``"blocks.3.hook_resid_post"``, ``"3"``/``"3.resid_pre"`` or a tuple."""
        if isinstance(spec, Site):
            return spec
        if isinstance(spec, tuple):
            return cls(*spec)
        if isinstance(spec, int) and not isinstance(spec, bool):
            return cls(spec)
        if not isinstance(spec, str):
            raise TypeError(f"cannot read a Site from {spec!r}")
        m = _NAME.match(spec)
        if m:
            return cls(int(m.group(1)), m.group(2))  # type: ignore[arg-type]
        layer, _, kind = spec.partition(".")
        if layer.isdigit():
            return cls(int(layer), (kind or "resid_post"))  # type: ignore[arg-type]
        raise ValueError(
            f"cannot read a Site from {spec!r}: write 'blocks.L.hook_resid_post', "
            "'L', or 'L.resid_pre'"
        )

    def check(self, n_layers: int) -> Site:
        """Return self, or raise if the layer does not exist in a model of ``n_layers``."""
        if self.layer >= n_layers:
            raise ValueError(
                f"layer {self.layer} out of range: this model has {n_layers} layers "
                f"(valid layers are 0..{n_layers - 1})"
            )
        return self

    def stream_index(self) -> int:
        """Index into HF ``output_hidden_states`` (exact except the last layer's resid_post)."""
        return self.layer + (1 if self.kind == "resid_post" else 0)


def as_sites(sites, n_layers: int | None = None) -> list[Site]:
    """Normalise one or many site specs into a sorted, de-duplicated list of Sites."""
    one_tuple = (
        isinstance(sites, tuple)
        and len(sites) == 2
        and isinstance(sites[0], int)
        and isinstance(sites[1], str)
    )  # ("3", ...) or (3, "resid_pre") is one site; any other tuple is a sequence of sites
    if isinstance(sites, (Site, str, int)) or one_tuple:
        sites = [sites]
    out = sorted({Site.parse(s) for s in sites})
    if not out:
        raise ValueError("no sites given: name at least one, e.g. Site(1, 'resid_post')")
    if n_layers is not None:
        for s in out:
            s.check(n_layers)
    return out


def exec_order(site: Site) -> tuple[int, bool]:
    """Sort key in the order a forward pass reaches sites (post of l before pre of l + 1)."""
    return (site.stream_index(), site.kind == "resid_pre")


# -- the mapping to Hugging Face modules (one place) --------------------------------


def decoder_layers_path(model: torch.nn.Module, n_layers: int) -> str:
    """Dotted path of the ModuleList holding the decoder layers (``model.layers``, ``transformer.h``…)."""
    for path in ("model.layers", "transformer.h", "gpt_neox.layers", "model.decoder.layers"):
        mod = model
        try:
            for part in path.split("."):
                mod = getattr(mod, part)
        except AttributeError:
            continue
        if isinstance(mod, torch.nn.ModuleList) and len(mod) == n_layers:
            return path
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.ModuleList) and len(mod) == n_layers and name:
            return name
    raise TypeError(
        f"cannot find the {n_layers} decoder layers of {type(model).__name__}: "
        "this architecture is not supported yet (Llama, Qwen2, GPT-2, GPT-NeoX are)"
    )


def hidden_from(output):
    """The residual tensor inside a decoder layer's output (a tensor or a tuple)."""
    return output[0] if isinstance(output, tuple) else output


def replace_hidden(output, new):
    """Return a decoder layer output with its residual tensor replaced by ``new``."""
    if isinstance(output, tuple):
        return (new, *output[1:])
    return new
