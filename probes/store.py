"""On-disk activation store: sharded safetensors plus a JSON manifest, resumable.

Layout of a store folder::

    manifest.json            settings + the list of finished shards (with SHA-256)
    shard-00000.safetensors  rows of traces [0, shard_size)
    shard-00001.safetensors  ...

Every file is written to a temporary name and moved into place (``os.replace``), and a
shard enters the manifest only after its file is complete, so a run killed at any
moment leaves a store that resumes where it stopped: finished shards are verified and
kept, missing ones computed. Resuming with other settings (model, sites, pooling, data)
is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from .extract import ActivationTable, extract_aligned, prepare
from .sites import Site
from .spans import LabeledTrace, data_hash

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@contextmanager
def atomic_path(path: Path):
    """Yield a temporary path beside ``path``; on success fsync it and move it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old or the new file."""
    with atomic_path(Path(path)) as tmp, open(tmp, "wb") as f:
        f.write(data)


def atomic_save_tensors(
    path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None
) -> None:
    """``safetensors.torch.save_file``, atomically."""
    with atomic_path(Path(path)) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, tmp, metadata=metadata)


class ActivationStore:
    """A store folder. Use :func:`extract_to_store` to fill it and :meth:`load` to read it."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    def manifest(self) -> dict[str, Any] | None:
        if not self.manifest_path.exists():
            return None
        try:
            return json.loads(self.manifest_path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(
                f"the store manifest {self.manifest_path} is corrupted ({e}): "
                "delete the folder and extract again"
            ) from e

    @property
    def complete(self) -> bool:
        m = self.manifest()
        return bool(m and m.get("complete"))

    def _read_shard(self, entry: dict[str, Any], cfg: dict[str, Any]) -> ActivationTable:
        f = self.path / entry["file"]
        if not f.exists():
            raise ValueError(
                f"shard {f} is listed in the manifest but missing: re-run the "
                "extraction on this folder to recompute it"
            )
        if _sha256(f) != entry["sha256"]:
            raise ValueError(
                f"shard {f} is corrupted or truncated (checksum mismatch): delete "
                "it and re-run the extraction on this folder to recompute it"
            )
        try:
            tensors = load_file(str(f))
        except Exception as e:  # safetensors raises its own error types
            raise ValueError(f"shard {f} cannot be read ({e}): delete it and re-run") from e
        acts = {Site.parse(name): tensors[f"acts.{name}"] for name in cfg.get("sites", [])}
        return ActivationTable(
            acts,
            entry["labels"],
            tensors["trace_ids"],
            cfg.get("pooling", ""),
            cfg.get("fingerprint", {}),
            cfg.get("data_hash", ""),
            cfg.get("k", 10),
        )

    def load(self) -> ActivationTable:
        """Read every shard (checksums verified) into one table."""
        m = self.manifest()
        if m is None:
            raise ValueError(f"{self.path} is not an activation store (no {MANIFEST})")
        if not m.get("complete"):
            raise ValueError(
                f"the store {self.path} is incomplete ({len(m['shards'])} of "
                f"{m['n_shards']} shards): resume it with extract_to_store"
            )
        shards = [self._read_shard(e, m["config"]) for e in m["shards"]]
        return ActivationTable.concat(shards, renumber=False)  # the shards' ids are global


def extract_to_store(
    model: Any,
    traces: Sequence[LabeledTrace],
    sites: Any,
    path: str | Path,
    *,
    pooling: str = "decision",
    labels: Sequence[str] | None = None,
    k: int = 10,
    rest: bool = True,
    shard_size: int = 256,
    batch_size: int = 16,
    progress: bool = True,
) -> ActivationStore:
    """Extract into a sharded on-disk store, resuming a killed run without recomputing."""
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    handle, site_list, aligned, wanted = prepare(model, traces, sites, pooling, k, labels)
    config = {
        "version": FORMAT_VERSION,
        # the model's identity without its path: the same weights loaded elsewhere resume
        "fingerprint": {k: v for k, v in handle.fingerprint.to_dict().items() if k != "name"},
        "sites": [s.name for s in site_list],
        "pooling": pooling,
        "k": k,
        "rest": rest,
        "labels": sorted(wanted) if wanted is not None else None,
        "data_hash": data_hash(traces),
        "n_traces": len(traces),
        "shard_size": shard_size,
    }
    store = ActivationStore(path)
    n_shards = (len(aligned) + shard_size - 1) // shard_size
    m = store.manifest()
    if m is None:
        m = {"config": config, "shards": [], "n_shards": n_shards, "complete": False}
        atomic_write_bytes(store.manifest_path, json.dumps(m, indent=1).encode())
    elif m["config"] != config:
        diff = sorted(k for k in config if m["config"].get(k) != config[k])
        raise ValueError(
            f"the store at {store.path} was made with other settings ({', '.join(diff)} "
            "differ): use a new folder, or delete this one"
        )
    done = {}
    for e in m["shards"]:
        f = store.path / e["file"]
        if f.exists() and _sha256(f) == e["sha256"]:
            done[e["index"]] = e
    bar = tqdm(total=n_shards, initial=len(done), desc="shards", disable=not progress)
    for i in range(n_shards):
        if i in done:
            continue
        lo, hi = i * shard_size, min(len(aligned), (i + 1) * shard_size)
        acts, labs, ids = extract_aligned(
            handle,
            aligned[lo:hi],
            site_list,
            pooling,
            k=k,
            labels=wanted,
            rest=rest,
            batch_size=batch_size,
            trace_offset=lo,
            progress=False,
        )
        fname = f"shard-{i:05d}.safetensors"
        tensors = {f"acts.{s.name}": acts[s] for s in site_list}
        tensors["trace_ids"] = ids
        atomic_save_tensors(store.path / fname, tensors)
        done[i] = {
            "index": i,
            "file": fname,
            "traces": [lo, hi],
            "rows": len(labs),
            "labels": labs,
            "sha256": _sha256(store.path / fname),
        }
        m["shards"] = [done[j] for j in sorted(done)]
        m["complete"] = len(done) == n_shards
        atomic_write_bytes(store.manifest_path, json.dumps(m, indent=1).encode())
        bar.update(1)
    bar.close()
    return store
