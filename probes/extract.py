"""Extraction: pooled residual activations at labelled spans, many labels and sites per pass.

Poolings (how a span becomes one vector):

- ``decision`` — the position whose *next* token begins the span: the moment the model
  chooses to start the strategy (the token before the span's first token).
- ``mean`` — mean over the span's tokens.
- ``mean_first_k`` — mean over the span's first ``k`` tokens.
- ``last`` — the span's last token.

Every trace also gives one ``REST`` row (unless ``rest=False``): the mean over the
trace's scored positions (from ``scored_from`` on) that no span's pooling uses — the
"rest of trace" baseline.

Only the requested positions are kept (gathered inside the forward pass) and the pass
stops after the deepest requested site, so memory grows with the number of selected
positions, not with sequence x layers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from tqdm.auto import tqdm

from .handles import ModelHandle, wrap
from .sites import Site, as_sites
from .spans import AlignedTrace, LabeledTrace, align, collect_labels, data_hash

POOLINGS = ("decision", "mean", "mean_first_k", "last")
REST = "<rest>"


@dataclass
class ActivationTable:
    """Pooled activations: one row per (trace, span) plus REST rows.

    ``acts[site]`` is a float32 CPU tensor (rows, d_model); ``labels[i]`` and
    ``trace_ids[i]`` describe row i.
    """

    acts: dict[Site, torch.Tensor]
    labels: list[str]
    trace_ids: torch.Tensor
    pooling: str
    fingerprint: dict[str, Any] = field(default_factory=dict)
    data_hash: str = ""
    k: int = 10

    def __post_init__(self) -> None:
        n = len(self.labels)
        for s, x in self.acts.items():
            if x.shape[0] != n:
                raise ValueError(f"site {s} has {x.shape[0]} rows but there are {n} labels")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def sites(self) -> list[Site]:
        return sorted(self.acts)

    @property
    def label_names(self) -> list[str]:
        """Span labels present (REST excluded)."""
        return sorted({lab for lab in self.labels if lab != REST})

    def mask(self, label: str) -> torch.Tensor:
        self.check_label(label)
        return torch.tensor([lab == label for lab in self.labels], dtype=torch.bool)

    def check_label(self, label: str) -> None:
        if label not in set(self.labels):
            known = ", ".join(self.label_names + ([REST] if REST in self.labels else []))
            raise ValueError(f"unknown label {label!r}: this table has {known or 'no labels'}")

    def check_site(self, site: Site | str) -> Site:
        s = Site.parse(site)
        if s not in self.acts:
            have = ", ".join(x.name for x in self.sites)
            raise ValueError(f"site {s} was not extracted: this table has {have}")
        return s

    def X(self, site: Site | str, label: str | None = None) -> torch.Tensor:
        x = self.acts[self.check_site(site)]
        return x if label is None else x[self.mask(label)]

    def mean(self, site: Site | str, label: str) -> torch.Tensor:
        x = self.X(site, label)
        if x.shape[0] == 0:
            raise ValueError(f"label {label!r} has no examples: extract traces that contain it")
        return x.mean(0)

    def select(self, rows: torch.Tensor) -> ActivationTable:
        idx = rows.nonzero().flatten() if rows.dtype == torch.bool else rows
        return ActivationTable(
            {s: x[idx] for s, x in self.acts.items()},
            [self.labels[i] for i in idx.tolist()],
            self.trace_ids[idx],
            self.pooling,
            self.fingerprint,
            self.data_hash,
            self.k,
        )

    @staticmethod
    def concat(tables: Sequence[ActivationTable], *, renumber: bool = True) -> ActivationTable:
        """The tables' rows one after another, for one model, pooling and set of sites.

        Each :func:`extract` numbers its traces from 0, so by default each table's trace ids
        are shifted past the previous tables' (rows of different traces stay apart, e.g. in
        :func:`probes.fit_pca`'s pairing); ``renumber=False`` keeps ids already global (the
        store's shards).
        """
        if not tables:
            raise ValueError("nothing to concatenate")
        t0 = tables[0]
        for i, t in enumerate(tables[1:], 1):
            for what in ("pooling", "k", "fingerprint"):
                if getattr(t, what) != getattr(t0, what):
                    raise ValueError(
                        f"table {i} has another {what} ({getattr(t, what)!r}) than table 0 "
                        f"({getattr(t0, what)!r}): concatenate tables of one model and pooling"
                    )
            if set(t.acts) != set(t0.acts):
                raise ValueError(
                    f"table {i} holds other sites than table 0: extract the same sites"
                )
        ids = [t.trace_ids for t in tables]
        if renumber:  # each table numbers its traces from 0: shift them so that they stay apart
            ends = [int(x.max()) + 1 if len(x) else 0 for x in ids]
            ids = [x + sum(ends[:i]) for i, x in enumerate(ids)]
        hashes = {t.data_hash for t in tables}
        return ActivationTable(
            {s: torch.cat([t.acts[s] for t in tables]) for s in t0.acts},
            [lab for t in tables for lab in t.labels],
            torch.cat(ids),
            t0.pooling,
            t0.fingerprint,
            t0.data_hash if len(hashes) == 1 else _combined_hash([t.data_hash for t in tables]),
            t0.k,
        )


def _combined_hash(hashes: Sequence[str]) -> str:
    """One data hash for tables made from different traces, in their order."""
    return hashlib.sha256("\n".join(hashes).encode()).hexdigest()


def pool_groups(
    tr: AlignedTrace, pooling: str, k: int, labels: set[str] | None, rest: bool
) -> list[tuple[str, list[int]]]:
    """Which token positions make up each pooled row of one aligned trace."""
    groups: list[tuple[str, list[int]]] = []
    used: set[int] = set()
    for s in tr.spans:
        if labels is not None and s.label not in labels:
            continue
        if pooling == "decision":
            if s.start == 0:
                raise ValueError(
                    f"span {s.label!r} starts at the first token, so no position precedes it: "
                    "prepend a prompt or a BOS token"
                )
            pos = [s.start - 1]
        elif pooling == "mean":
            pos = list(range(s.start, s.end))
        elif pooling == "mean_first_k":
            pos = list(range(s.start, min(s.end, s.start + k)))
        else:  # last
            pos = [s.end - 1]
        groups.append((s.label, pos))
        used.update(pos)
    if rest:  # REST excludes every span's positions, whatever the label filter
        for s in tr.spans:
            used.update([s.start - 1] if pooling == "decision" else range(s.start, s.end))
        pos = [i for i in range(tr.scored_from, len(tr.input_ids)) if i not in used]
        if pos:
            groups.append((REST, pos))
    return groups


def prepare(
    model: Any,
    traces: Sequence[LabeledTrace],
    sites: Any,
    pooling: str,
    k: int,
    labels: Sequence[str] | None,
) -> tuple[ModelHandle, list[Site], list[AlignedTrace], set[str] | None]:
    """Validate every input before any forward pass, and align each trace to tokens once.

    Returns the handle, the sorted sites, the aligned traces and the label filter.
    """
    handle = wrap(model)
    if pooling not in POOLINGS:
        raise ValueError(f"unknown pooling {pooling!r}: use one of {', '.join(POOLINGS)}")
    if pooling == "mean_first_k" and k < 1:
        raise ValueError(f"mean_first_k needs k >= 1, got {k}")
    site_list = as_sites(sites, handle.n_layers)
    if not traces:
        raise ValueError("no traces given: pass at least one LabeledTrace")
    bad = [i for i, t in enumerate(traces) if not isinstance(t, LabeledTrace)]
    if bad:
        raise TypeError(f"traces must be LabeledTrace objects (item {bad[0]} is not)")
    present = collect_labels(traces)
    wanted: set[str] | None = None
    if labels is not None:
        wanted = set(labels)
        missing = sorted(wanted - set(present))
        if missing:
            raise ValueError(
                f"unknown label(s) {missing}: the traces contain {present or 'no spans'}"
            )
    aligned = [align(t, handle.tokenizer) for t in traces]
    check_aligned(handle, aligned, pooling, k, wanted)
    return handle, site_list, aligned, wanted


def _position_limit(handle: ModelHandle) -> int | None:
    cfg = getattr(handle.model, "config", None)
    limit = getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", None)
    return limit if isinstance(limit, int) else None


def check_aligned(
    handle: ModelHandle,
    aligned: Sequence[AlignedTrace],
    pooling: str,
    k: int,
    labels: set[str] | None,
) -> None:
    """Everything about the traces that would otherwise fail mid-run, for all traces at once.

    Run before the first forward pass, so a bad trace near the end of a long extraction
    (or of a sharded store) is found before anything is computed or written.
    """
    limit = _position_limit(handle)
    vocab = handle.vocab_size
    for i, tr in enumerate(aligned):
        if limit is not None and len(tr.input_ids) > limit:
            raise ValueError(
                f"trace {i} has {len(tr.input_ids)} tokens but the model has {limit} positions: "
                "shorten or split it"
            )
        bad = [t for t in tr.input_ids if not 0 <= int(t) < vocab]
        if bad:
            raise ValueError(
                f"trace {i} has token id {bad[0]} outside the model's vocabulary (0..{vocab - 1}): "
                "tokenize it with this model's tokenizer"
            )
        try:
            pool_groups(tr, pooling, k, labels, rest=False)
        except ValueError as e:
            raise ValueError(f"trace {i}: {e}") from None


def extract_aligned(
    handle: ModelHandle,
    aligned: Sequence[AlignedTrace],
    sites: list[Site],
    pooling: str,
    *,
    k: int = 10,
    labels: set[str] | None = None,
    rest: bool = True,
    batch_size: int = 16,
    trace_offset: int = 0,
    progress: bool = True,
    desc: str = "extract",
) -> tuple[dict[Site, torch.Tensor], list[str], torch.Tensor]:
    """Core loop over batches of aligned traces. Returns (acts, labels, trace_ids)."""
    pad = handle.tokenizer.pad_token_id
    out_acts: dict[Site, list[torch.Tensor]] = {s: [] for s in sites}
    out_labels: list[str] = []
    out_ids: list[int] = []
    order = sorted(range(len(aligned)), key=lambda i: len(aligned[i].input_ids))
    bar = tqdm(total=len(aligned), desc=desc, disable=not progress, leave=False)
    results: dict[int, tuple[dict[Site, torch.Tensor], list[str]]] = {}
    for b0 in range(0, len(order), batch_size):
        batch = order[b0 : b0 + batch_size]
        T = max(len(aligned[i].input_ids) for i in batch)
        ids = torch.full((len(batch), T), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), T), dtype=torch.long)
        rows: list[int] = []
        cols: list[int] = []
        group_of: list[int] = []  # pooled row (group) of each gathered position
        plan: list[tuple[int, int, list[str]]] = []  # (trace, first group, labels)
        n_groups = 0
        for r, i in enumerate(batch):
            tr = aligned[i]
            off = T - len(tr.input_ids)  # left padding
            ids[r, off:] = torch.tensor(tr.input_ids)
            mask[r, off:] = 1
            groups = pool_groups(tr, pooling, k, labels, rest)
            plan.append((i, n_groups, [lab for lab, _ in groups]))
            for _, pos in groups:
                rows.extend([r] * len(pos))
                cols.extend(p + off for p in pos)
                group_of.extend([n_groups] * len(pos))
                n_groups += 1
        if not rows:
            bar.update(len(batch))
            for i, _, _ in plan:
                results[i] = ({s: torch.empty(0, handle.d_model) for s in sites}, [])
            continue
        dev = handle.device
        index = (torch.tensor(rows, device=dev), torch.tensor(cols, device=dev))
        with torch.no_grad():
            out = handle.run(ids.to(dev), mask.to(dev), read=sites, index=index, stop_early=True)
        # mean over each group's positions in one scatter-add (float32), then to the CPU
        gid = torch.tensor(group_of, device=dev)
        count = torch.zeros(n_groups, device=dev).index_add_(
            0, gid, torch.ones(len(gid), device=dev)
        )
        pooled = {}
        for s in sites:
            x = out.acts[s].float()
            sums = torch.zeros(n_groups, x.shape[-1], device=dev).index_add_(0, gid, x)
            pooled[s] = (sums / count[:, None]).cpu()
            if not torch.isfinite(pooled[s]).all():
                raise ValueError(
                    f"non-finite activations (NaN/inf) at {s}: the model or its dtype overflowed; "
                    "load it in float32 or check the weights"
                )
        for i, g0, labs in plan:
            results[i] = ({s: pooled[s][g0 : g0 + len(labs)] for s in sites}, labs)
        bar.update(len(batch))
    bar.close()
    for i in range(len(aligned)):  # restore the input order
        per_site, labs = results[i]
        for s in sites:
            out_acts[s].append(per_site[s])
        out_labels.extend(labs)
        out_ids.extend([trace_offset + i] * len(labs))
    acts = {s: torch.cat(v) if v else torch.empty(0, handle.d_model) for s, v in out_acts.items()}
    return acts, out_labels, torch.tensor(out_ids, dtype=torch.long)


def extract(
    model: Any,
    traces: Sequence[LabeledTrace],
    sites: Any,
    pooling: str = "decision",
    *,
    labels: Sequence[str] | None = None,
    k: int = 10,
    rest: bool = True,
    batch_size: int = 16,
    progress: bool = True,
) -> ActivationTable:
    """Extract pooled activations for every labelled span of ``traces`` at ``sites``.

    ``model`` is a handle or anything :func:`probes.wrap` accepts. ``labels`` restricts
    the spans used (default: all). Returns an in-memory :class:`ActivationTable`; for
    large runs use :func:`probes.store.extract_to_store`.
    """
    handle, site_list, aligned, wanted = prepare(model, traces, sites, pooling, k, labels)
    acts, labs, ids = extract_aligned(
        handle,
        aligned,
        site_list,
        pooling,
        k=k,
        labels=wanted,
        rest=rest,
        batch_size=batch_size,
        progress=progress,
    )
    if not labs:
        raise ValueError("no rows extracted: the traces have no spans with the requested labels")
    return ActivationTable(
        acts, labs, ids, pooling, handle.fingerprint.to_dict(), data_hash(traces), k
    )
