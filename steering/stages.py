"""The runner's stages (all but the scheduling study's, which are in
:mod:`steering.scheduling.stages`): each takes the :class:`~steering.experiment.Run` and returns
what lands in ``results.json``, cached through :meth:`Run.cached <steering.experiment.Run.cached>`
under a key of the settings it depends on.

``passk``    base and RL samples on the test split: pass@k curves with CIs, the crossover
             k*, coverage split, per class and overall.
``extract``  labelled base samples on the dev split; pooled activations (resumable store).
``sweep``    held-out AUROC per (site, label) against baselines; one vector per label.
``diff``     update sparsity base -> RL and overlap across RL seeds.
``formats``  format shares over RL steps from the training logs.
``claim``    an RL-claim experiment (``rlvr.organism.claims``) from its claims folder.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import probes
from probes import Site
from rlvr.measures import passk as pk
from rlvr.measures.passk import correct_counts

from . import check_same_tokenizer  # exported by the package (steering.hybrid)
from .config import ConfigError

if TYPE_CHECKING:
    from .experiment import Run

__all__ = [
    "file_sha",
    "key_hash",
    "stage_claim",
    "stage_diff",
    "stage_extract",
    "stage_formats",
    "stage_passk",
    "stage_sweep",
    "summarize_passk",
]


def key_hash(obj: Any) -> str:
    """A short hash of a cache key (any JSON-able object; others by ``str``)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def file_sha(path: str | Path) -> str:
    """A short hash of a file's bytes, for cache keys that depend on a file."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def stage_passk(run: Run) -> dict:
    cfg = run.cfg
    s = cfg.sampling
    problems = run.problems("test")
    try:  # another vocabulary: the RL model's samples would be scored through the wrong one
        check_same_tokenizer(run.model("base").tokenizer, run.model("rl").tokenizer, what="RL")
    except ValueError as err:
        raise ConfigError(f"{cfg.where('models', 'rl')}: {err}") from err
    key = ["passk", run.settings_key(), cfg.hybrid.n_boot]

    def compute() -> dict:
        out: dict[str, Any] = {
            "n": s.n,
            "ks": s.ks,
            "problems": [run.task.uid(p) for p in problems],
            "classes": [run.task.cls_of(p) for p in problems],
        }
        for which in ("base", "rl"):
            smp = run.sample(which, problems, s.n, run.seed)
            out[f"{which}_correct"] = correct_counts(run.task, problems, smp).tolist()
            fmts: dict[str, int] = {}
            for t in smp.texts:
                f = run.task.format_of(t)
                fmts[f] = fmts.get(f, 0) + 1
            out[f"{which}_formats"] = fmts
            out[f"{which}_examples"] = smp.texts[: 3 * s.n : s.n]
        return out

    raw = run.cached("passk", key, compute)
    out = summarize_passk(raw, cfg.hybrid.n_boot, run.seed)
    out["sampling"] = run.sampling_params(s.n, run.seed).to_dict()  # provenance of the samples
    return out


def summarize_passk(raw: dict, n_boot: int, seed: int) -> dict:
    n, ks = raw["n"], raw["ks"]
    classes = np.array(raw["classes"])
    out: dict[str, Any] = {"n": n, "ks": ks, "per_class": {}, "raw": raw}
    groups = {"all": np.ones(len(classes), bool)}
    for c in sorted(set(classes)):
        groups[c] = classes == c
    for name, m in groups.items():
        b = np.array(raw["base_correct"])[m]
        r = np.array(raw["rl_correct"])[m]
        cb = pk.passk_curve(b, n, ks, n_boot=n_boot, seed=seed)
        cr = pk.passk_curve(r, n, ks, n_boot=n_boot, seed=seed)
        x = pk.crossover(b, r, n, ks, n_boot=n_boot, seed=seed)
        out["per_class"][name] = {
            "n_problems": int(m.sum()),
            "base": {"mean": cb.mean.tolist(), "low": cb.low.tolist(), "high": cb.high.tolist()},
            "rl": {"mean": cr.mean.tolist(), "low": cr.low.tolist(), "high": cr.high.tolist()},
            "crossover": {
                "k_star": x.k_star,
                "ci": [x.ci_low, x.ci_high],
                "p_exists": x.p_exists,
                "note": x.note,
                "diff": list(map(float, x.diff)),
                "diff_low": list(map(float, x.diff_low)),
                "diff_high": list(map(float, x.diff_high)),
            },
            "coverage": pk.coverage_split(b, r),
        }
    return out


def stage_extract(run: Run) -> probes.ActivationTable:
    e = run.cfg.extract
    base = run.model("base")
    sites = base.sites("resid_post") if e.sites == ["all"] else [Site.parse(x) for x in e.sites]
    key = ["extract", run.settings_key(), asdict(e), [s.name for s in sites]]
    if run.cfg.task.kind != "organism":  # the spans come from the configured labeller
        lab = run.cfg.task.labeller
        key.append(["labeller", file_sha(lab) if Path(lab).is_file() else lab])
    store_path = run.out / "cache" / f"store-{key_hash(key)}"

    def compute() -> dict:
        traces = run.dev_traces("base", run.seed + 1)[: e.n_traces]
        labels = e.labels
        present = probes.spans.collect_labels(traces)
        wanted = [x for x in labels if x in present] if labels else None
        probes.extract_to_store(
            base, traces, sites, store_path, pooling=e.pooling, labels=wanted, progress=run.progress
        )
        return {
            "n_traces": len(traces),
            "store": str(store_path),
            "labels": present,
            "missing_labels": sorted(set(labels) - set(present)),
        }

    info = run.cached("extract", key, compute)
    table = probes.ActivationStore(info["store"]).load()
    run.results["extract"] = {k: v for k, v in info.items() if k != "store"}
    return table


def _table_sha(table: probes.ActivationTable) -> str:
    """A hash of an activation table's contents (activations, labels, trace ids)."""
    h = hashlib.sha256()
    for site in sorted(table.acts, key=lambda s: s.name):
        h.update(site.name.encode())
        h.update(table.acts[site].contiguous().numpy().tobytes())
    h.update(json.dumps(table.labels).encode())
    h.update(table.trace_ids.numpy().tobytes())
    return h.hexdigest()


def stage_sweep(run: Run, table: probes.ActivationTable) -> dict:
    """The layer sweep and one vector per label, cached by the table's contents and the
    settings; a cached sweep whose vector files are gone or changed is computed again."""
    sw = run.cfg.sweep
    e = run.cfg.extract
    from probes.probe import MIN_PER_CLASS, SweepResult, SweepRow

    vec_dir = run.out / "vectors"
    key = ["sweep", _table_sha(table), asdict(sw), e.method, e.baseline, run.seed, MIN_PER_CLASS]
    key.append("folds and bootstrap by trace")  # rows of one trace are not independent

    def compute() -> dict:
        counts = {x: int(table.mask(x).sum()) for x in table.label_names}
        labels = [x for x, c in counts.items() if c >= MIN_PER_CLASS]
        too_few = {x: c for x, c in counts.items() if c < MIN_PER_CLASS}
        res = probes.layer_sweep(
            table,
            labels,
            probe=sw.probe,
            baseline=e.baseline,
            folds=sw.folds,
            n_random=sw.n_random,
            n_boot=sw.n_boot,
            seed=run.seed,
        )
        vectors = {}
        for label in labels:
            v = probes.fit(table, label, method=e.method, baseline=e.baseline)
            vectors[label] = str(v.save(vec_dir / f"{label}.safetensors"))
        return {
            "result": res.to_dict(),
            "vectors": vectors,
            "vector_sha": {lab: file_sha(p) for lab, p in vectors.items()},
            "best_site": {lab: res.best_site(lab).name for lab in labels},
            "too_few_rows": too_few,  # labels left out: fewer rows than a probe can be judged on
        }

    def vectors_intact(value: dict) -> bool:  # the vector files it names, unchanged
        return all(
            Path(p).is_file() and file_sha(p) == value["vector_sha"][lab]
            for lab, p in value["vectors"].items()
        )

    got = run.cached("sweep", key, compute, valid=vectors_intact)
    r = got["result"]
    result = SweepResult(
        [SweepRow(**row) for row in r["rows"]], r["probe"], r["baseline"], r["folds"], r["seed"]
    )
    return {
        "rows": r["rows"],
        **{k: got[k] for k in ("vectors", "vector_sha", "best_site", "too_few_rows", "seconds")},
        "_result": result,
    }


def stage_diff(run: Run) -> dict:
    from rlvr.measures.weightdiff import seed_overlap, update_sparsity

    m, d = run.cfg.models, run.cfg.diff
    others = [
        file_sha(Path(o) / "model.safetensors") if (Path(o) / "model.safetensors").exists() else o
        for o in m.rl_other_seeds
    ]
    key = ["diff", d.dtypes, d.tol, run.fingerprints(), others]

    def compute() -> dict:
        out: dict[str, Any] = {"tol": d.tol, "sparsity": {}, "overlap": []}
        for dt in d.dtypes:
            u = update_sparsity(m.base, m.rl, tol=d.tol, dtype=dt)
            out["sparsity"][dt] = {
                "updated_share": u.updated_share,
                "n_params": u.n_params,
                "per_layer": [x.__dict__ for x in u.per_layer],
            }
        for other in m.rl_other_seeds:
            o = seed_overlap(m.base, m.rl, other, tol=d.tol, dtype=d.dtypes[0])
            out["overlap"].append({"other": other, **o.__dict__})
        return out

    return run.cached("diff", key, compute)


def stage_formats(run: Run) -> dict:
    from rlvr.measures.formats import format_shares_from_log

    out = []
    for log in run.cfg.formats.logs:
        fs = format_shares_from_log(log)
        out.append(
            {
                "log": log,
                "steps": list(map(int, fs.steps)),
                "labels": list(fs.labels),
                "shares": np.asarray(fs.shares).tolist(),
                "entropy": np.asarray(fs.entropy).tolist(),
                "collapse_step": fs.collapse_step(0.9),
                "dominant": fs.dominant(),
            }
        )
    return {"logs": out}


def stage_claim(run: Run) -> dict:
    from rlvr.organism.claims import ClaimSettings, measure_claim

    c = run.cfg.claim
    folder = Path(c.folder)
    settings = ClaimSettings(
        n=c.n,
        n_problems=c.n_problems,
        ks=tuple(c.ks),
        n_boot=c.n_boot,
        seed=run.seed,
        min_effect=c.min_effect,
        margin=c.margin,
        batch_size=run.cfg.sampling.batch_size,
    )
    from rlvr.organism.claims.recipe import load_claims

    # everything a claim reads: its runs, their logs and chosen problems, and the organism
    # its recipe names (models, logs, problem splits)
    organism = load_claims(folder / "recipe.toml").organism_dir
    files = sorted(
        [
            folder / "recipe.toml",
            folder / "training.json",
            *folder.glob("*/model.safetensors"),
            *folder.glob("logs/*.jsonl"),
            *folder.glob("problems/*.jsonl"),
            *organism.glob("*/model.safetensors"),
            *organism.glob("logs/*.jsonl"),
            *organism.glob("splits/*.jsonl"),
        ]
    )
    key = ["claim", c.kind, asdict(c), run.seed, {str(f): file_sha(f) for f in files}]
    return run.cached(
        "claim", key, lambda: measure_claim(c.kind, folder, settings, progress=run.progress)
    )
