"""Reading safetensors checkpoints tensor by tensor, so two large checkpoints can be
compared in CPU memory.

A checkpoint is a ``.safetensors`` file, or a folder holding ``model.safetensors`` or a
sharded set listed in ``model.safetensors.index.json``. :func:`open_checkpoint` lists its
tensors and shapes without reading them; :func:`blocks` yields one tensor of several
checkpoints in aligned row blocks (large tensors never whole).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open

__all__ = [
    "Checkpoint",
    "PathLike",
    "Readers",
    "blocks",
    "check_same_architecture",
    "natural_sorted",
    "open_checkpoint",
]

PathLike = str | os.PathLike[str]

_SINGLE = "model.safetensors"
_INDEX = "model.safetensors.index.json"


@dataclass(frozen=True)
class Checkpoint:
    label: str
    files: dict[str, Path]  # tensor name -> file holding it
    shapes: dict[str, tuple[int, ...]]


def _resolve_files(path: Path) -> dict[str, Path] | list[Path]:
    """Either the index's name -> shard map, or the single file to read."""
    if not path.exists():
        raise FileNotFoundError(f"checkpoint path {str(path)!r} does not exist")
    if path.is_file():
        if path.suffix != ".safetensors":
            raise ValueError(
                f"{str(path)!r} is not a .safetensors file: convert the checkpoint to safetensors "
                "(e.g. save_pretrained(..., safe_serialization=True))"
            )
        return [path]
    index = path / _INDEX
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise ValueError(
                f"{str(index)!r} is not a safetensors index (expected a JSON object with a "
                f"'weight_map' of tensor name -> shard file): {err}"
            ) from err
        files = {name: path / shard for name, shard in weight_map.items()}
        for shard in sorted(set(files.values())):
            if not shard.is_file():
                raise FileNotFoundError(
                    f"shard {str(shard)!r} listed in {str(index)!r} is missing: copy the complete "
                    "checkpoint"
                )
        return files
    single = path / _SINGLE
    if single.is_file():
        return [single]
    hint = ""
    if (path / "pytorch_model.bin").exists() or (path / "pytorch_model.bin.index.json").exists():
        hint = " (found pytorch_model.bin: re-save it with safe_serialization=True)"
    raise FileNotFoundError(
        f"no checkpoint in {str(path)!r}: expected {str(single)!r} or {str(index)!r}{hint}"
    )


def open_checkpoint(path: PathLike) -> Checkpoint:
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"checkpoint must be a path, got {type(path).__name__}")
    p = Path(path)
    resolved = _resolve_files(p)
    files: dict[str, Path] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    shard_files = resolved if isinstance(resolved, list) else sorted(set(resolved.values()))
    for shard in shard_files:
        with safe_open(str(shard), framework="pt") as f:
            for name in f.keys():
                if isinstance(resolved, dict) and resolved.get(name) != shard:
                    continue
                files[name] = shard
                shapes[name] = tuple(f.get_slice(name).get_shape())
    if isinstance(resolved, dict):
        absent = sorted(set(resolved) - set(files))
        if absent:
            raise ValueError(
                f"index of {str(p)!r} lists {len(absent)} tensors that its shards lack "
                f"(e.g. {absent[:3]}): re-save the checkpoint"
            )
    if not files:
        raise ValueError(f"checkpoint {str(p)!r} holds no tensors")
    return Checkpoint(label=str(p), files=files, shapes=shapes)


def check_same_architecture(cks: Sequence[Checkpoint]) -> None:
    ref = cks[0]
    for other in cks[1:]:
        only_ref = sorted(set(ref.files) - set(other.files))
        only_other = sorted(set(other.files) - set(ref.files))
        if only_ref or only_other:
            raise ValueError(
                f"checkpoints differ in parameter names: {len(only_ref)} only in {ref.label!r} "
                f"(e.g. {only_ref[:5]}), {len(only_other)} only in {other.label!r} "
                f"(e.g. {only_other[:5]}): compare checkpoints of the same architecture"
            )
        for name in natural_sorted(ref.files):
            if ref.shapes[name] != other.shapes[name]:
                raise ValueError(
                    f"tensor {name!r} has shape {ref.shapes[name]} in {ref.label!r} but "
                    f"{other.shapes[name]} in {other.label!r}: compare checkpoints of the same "
                    "architecture"
                )


def natural_sorted(names: Iterable[str]) -> list[str]:
    def key(name: str) -> list[tuple[int, int | str]]:
        return [(0, int(t)) if t.isdigit() else (1, t) for t in re.split(r"(\d+)", name)]

    return sorted(names, key=key)


class Readers:
    """Lazily opened safetensors handles, closed together."""

    def __init__(self, stack: ExitStack) -> None:
        self._stack = stack
        self._handles: dict[Path, object] = {}

    def handle(self, file: Path):  # returns a safetensors handle (type not public)
        if file not in self._handles:
            self._handles[file] = self._stack.enter_context(safe_open(str(file), framework="pt"))
        return self._handles[file]


def blocks(
    readers: Readers, cks: Sequence[Checkpoint], name: str, chunk_size: int
) -> Iterator[list[torch.Tensor]]:
    """The tensor ``name`` from every checkpoint, in aligned row blocks of <= chunk_size."""
    shape = cks[0].shapes[name]
    numel = 1
    for s in shape:
        numel *= s
    handles = [readers.handle(ck.files[name]) for ck in cks]
    if len(shape) == 0 or numel <= chunk_size or shape[0] <= 1:
        yield [h.get_tensor(name) for h in handles]
        return
    rows = max(1, chunk_size // max(1, numel // shape[0]))
    slices = [h.get_slice(name) for h in handles]
    for start in range(0, shape[0], rows):
        yield [s[start : start + rows] for s in slices]
