"""The experiment runner: one TOML file in, ``results.json`` + ``report.md`` + plots out.

Stages (each cached under ``<output>/cache/<stage>.json``, keyed by the settings it depends
on and the model fingerprints, so a re-run skips finished stages):

``passk``    n samples per test problem from base and RL: pass@k curves with CIs, the
             crossover k*, coverage split, per class and overall.
``extract``  base-model samples on the dev split, labelled by the task; pooled
             activations at every requested site (resumable on-disk store).
``sweep``    held-out AUROC per (site, label) against shuffled-label and random-direction
             baselines; vectors fitted per label.
``select``   site and coefficient of the steering vectors chosen on the *dev* split.
``hybrid``   hybrid decoding on the *test* split: each router x mode, and the controls;
             recovery with a paired bootstrap CI and the steered-token fraction.
``budget``   recovery against the share of tokens the router touches (threshold sweep).
``diff``     update sparsity base -> RL (bf16 and fp32) and overlap across RL seeds.
``formats``  format shares over RL steps from the training logs.
``claim``    an RL-claim experiment (``[claim]``: ``rlvr.organism.claims``) from its claims
             folder: the only stage a config with ``[claim] kind`` runs by default.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

import probes
from probes import LabeledTrace, Site
from rlvr import passk as pk
from rlvr.sampling import sample
from rlvr.sampling_params import SamplingParams
from rlvr.tasks import load_task

from . import check_same_tokenizer  # exported by the package (steering.hybrid)
from .config import Config, ConfigError, checkpoint_problem, load_config

STAGES = (
    "passk",
    "extract",
    "sweep",
    "select",
    "hybrid",
    "temperature",
    "budget",
    "diff",
    "formats",
    "claim",
)


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _file_sha(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def _study_of(config: dict | None) -> dict | None:
    """A config dict without the keys that do not change results (the thread count)."""
    if not config:
        return config
    return {**config, "experiment": {**config["experiment"], "threads": None}}


def progress_enabled(requested: bool) -> bool:
    """Draw bars only where they redraw in place: a terminal, or Jupyter (tqdm.auto widgets).

    Redirected to a log file, a bar would append a line per refresh, so it is off there.
    """
    if not requested:
        return False
    if any(c.__module__ == "tqdm.notebook" for c in tqdm.__mro__):  # Jupyter: widgets
        return True
    return sys.stderr.isatty()


def stage_bar(stages: Sequence[str], progress: bool) -> tqdm:
    """The outer "stages" bar: on top (position 0), kept when done; inner bars go below it."""
    return tqdm(
        stages, desc="stages", disable=not progress, position=0, leave=True, dynamic_ncols=True
    )


def resolve_threads(cfg: Config) -> int:
    """Torch CPU threads for a run: ``[experiment] threads``, else 1 on a CPU device.

    More threads than free cores makes every batch wait on a descheduled thread (one
    organism batch: 30.6 s at torch's default 2 threads next to another busy process, 0.74 s
    at 1), so a CPU run uses 1 unless told otherwise; a GPU run keeps torch's default.
    """
    if cfg.experiment.threads > 0:
        return cfg.experiment.threads
    return 1 if cfg.models.device == "cpu" else torch.get_num_threads()


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("torch", "transformers", "nnsight", "transformer-lens", "scikit-learn", "trl"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


@dataclass
class Run:
    """Everything a stage needs: config, task, models (loaded lazily), output folder."""

    cfg: Config
    progress: bool = True
    force: bool = False
    results: dict[str, Any] = field(default_factory=dict)
    _models: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.progress = progress_enabled(self.progress)
        self.cache_log: dict[str, str] = {}  # stage -> "hit" | "computed"
        self.out = Path(self.cfg.experiment.output)
        (self.out / "cache").mkdir(parents=True, exist_ok=True)
        t = self.cfg.task
        kw: dict[str, Any] = {}
        if t.kind != "organism":  # real-model traces: spans from the configured labeller
            from rlvr.labelling import load_labeller

            kw["labeller"] = load_labeller(t.labeller, cache_dir=self.out / "cache" / "labeller")
        self.task = load_task(t.kind, {"dev": t.dev, "test": t.test}, t.spec or None, **kw)
        self.classes = t.classes or self.task.classes
        self.max_new_tokens = self.cfg.sampling.max_new_tokens or self.task.max_new_tokens
        self.seed = self.cfg.experiment.seed

    # -- models ------------------------------------------------------------------------
    def model(self, which: str) -> probes.ModelHandle:
        if which not in self._models:
            m = self.cfg.models
            path = {"base": m.base, "rl": m.rl}[which]
            problem = checkpoint_problem(Path(path), path)  # local folders only: no download
            if problem:
                raise ConfigError(f"{self.cfg.where('models', which)}: {problem}")
            dtype = getattr(torch, m.dtype)
            self._models[which] = probes.wrap(path, backend=m.backend, device=m.device, dtype=dtype)
        return self._models[which]

    def fingerprints(self) -> dict[str, str]:
        return {w: self.model(w).fingerprint.weights for w in ("base", "rl")}

    def settings_key(self) -> dict[str, Any]:
        """What every sampled stage depends on: models, task files, problems, sampling."""
        sampling = asdict(self.cfg.sampling)
        sampling.pop("batch_size")  # does not change the samples
        t = self.cfg.task
        files = {
            k: _file_sha(v) for k, v in (("spec", t.spec), ("dev", t.dev), ("test", t.test)) if v
        }
        return {
            "fingerprints": self.fingerprints(),
            "seed": self.seed,
            "sampling": sampling,
            "max_new_tokens": self.max_new_tokens,
            "classes": self.classes,
            "n_dev": t.n_dev,
            "n_test": t.n_test,
            "files": files,
        }

    # -- problems ----------------------------------------------------------------------
    def problems(self, split: str) -> list[Any]:
        n = self.cfg.task.n_test if split == "test" else self.cfg.task.n_dev
        out = []
        for cls in self.classes:
            ps = self.task.problems(split, None if cls == "all" else cls)
            if not ps:
                raise ValueError(f"the {split} split has no problems of class {cls!r}")
            out.extend(ps[:n])
        return out

    # -- cache -------------------------------------------------------------------------
    def cached(self, stage: str, key: Any, fn: Callable[[], dict]) -> dict:
        path = self.out / "cache" / f"{stage}.json"
        k = _hash(key)
        if path.exists() and not self.force:
            d = json.loads(path.read_text())
            if d.get("key") == k:
                self.cache_log[stage] = "hit"
                if self.progress:
                    print(f"[{stage}] cached")
                return d["value"]
        t0 = time.perf_counter()
        value = fn()
        value["seconds"] = round(time.perf_counter() - t0, 2)
        probes.store.atomic_write_bytes(path, json.dumps({"key": k, "value": value}).encode())
        self.cache_log[stage] = "computed"
        if self.progress:
            print(f"[{stage}] done in {value['seconds']:.1f}s")
        return value

    def sampling_params(self, n: int, seed: int) -> SamplingParams:
        """The study's sampling settings for ``n`` samples per problem (shared by every stage)."""
        s = self.cfg.sampling
        return SamplingParams(
            n=n,
            temperature=s.temperature,
            top_p=s.top_p,
            max_new_tokens=self.max_new_tokens,
            stop=self.task.stop,
            seed=seed,
        )

    def sampling_kwargs(self, problems: Sequence[Any], n: int, seed: int) -> dict[str, Any]:
        """``prompts`` of ``problems`` and ``params``: the study's :meth:`sampling_params`."""
        return dict(
            prompts=[self.task.prompt(p) for p in problems], params=self.sampling_params(n, seed)
        )

    def sample(self, which: str, problems: Sequence[Any], n: int, seed: int):
        return self.sample_with(which, self.sampling_kwargs(problems, n, seed))

    def sample_with(self, which: str, kw: dict[str, Any]):
        """Sample ``which`` ("base" or "rl") with :meth:`sampling_kwargs`-style settings."""
        if self.cfg.sampling.backend == "vllm":  # pass@k only: no controllers
            from rlvr.sampling_vllm import sample_vllm

            path = {"base": self.cfg.models.base, "rl": self.cfg.models.rl}[which]
            return sample_vllm(path, **kw)
        return sample(
            self.model(which), **kw, batch_size=self.cfg.sampling.batch_size, progress=self.progress
        )

    def dev_traces(self, which: str, seed: int) -> list[LabeledTrace]:
        """About ``[extract] n_traces`` samples of ``which`` on the dev split, labelled by the task."""
        problems = self.problems("dev")
        per = max(1, -(-self.cfg.extract.n_traces // len(problems)))
        return labelled_traces(self, problems, self.sample(which, problems, per, seed))

    def score(self, problems: Sequence[Any], samples) -> np.ndarray:
        """Per-problem correct counts, shape (problems,)."""
        correct = np.zeros(len(problems), dtype=int)
        for row, text in enumerate(samples.texts):
            i = samples.prompt_index[row]
            correct[i] += int(self.task.verify(problems[i], text) > 0.5)
        return correct


# -- stages --------------------------------------------------------------------------------


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
            out[f"{which}_correct"] = run.score(problems, smp).tolist()
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


def labelled_traces(run: Run, problems: Sequence[Any], samples) -> list[LabeledTrace]:
    traces = []
    for row, text in enumerate(samples.texts):
        prompt = run.task.prompt(problems[samples.prompt_index[row]])
        spans = run.task.spans(prompt, text)
        if spans:
            traces.append(
                LabeledTrace(
                    prompt + text, [probes.Span(*s) for s in spans], scored_from=len(prompt)
                )
            )
    return traces


def stage_extract(run: Run) -> probes.ActivationTable:
    e = run.cfg.extract
    base = run.model("base")
    sites = base.sites("resid_post") if e.sites == ["all"] else [Site.parse(x) for x in e.sites]
    key = ["extract", run.settings_key(), asdict(e), [s.name for s in sites]]
    if run.cfg.task.kind != "organism":  # the spans come from the configured labeller
        lab = run.cfg.task.labeller
        key.append(["labeller", _file_sha(lab) if Path(lab).is_file() else lab])
    store_path = run.out / "cache" / f"store-{_hash(key)}"

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


def stage_sweep(run: Run, table: probes.ActivationTable) -> dict:
    sw = run.cfg.sweep
    from probes.probe import MIN_PER_CLASS

    counts = {x: int(table.mask(x).sum()) for x in table.label_names}
    labels = [x for x, c in counts.items() if c >= MIN_PER_CLASS]
    too_few = {x: c for x, c in counts.items() if c < MIN_PER_CLASS}
    res = probes.layer_sweep(
        table,
        labels,
        probe=sw.probe,
        baseline=run.cfg.extract.baseline,
        folds=sw.folds,
        n_random=sw.n_random,
        n_boot=sw.n_boot,
        seed=run.seed,
    )
    vec_dir = run.out / "vectors"
    vectors = {}
    for label in labels:
        v = probes.fit(
            table, label, method=run.cfg.extract.method, baseline=run.cfg.extract.baseline
        )
        vectors[label] = str(v.save(vec_dir / f"{label}.safetensors"))
    vector_sha = {lab: _file_sha(p) for lab, p in vectors.items()}
    return {
        "rows": [r.__dict__ for r in res.rows],
        "vectors": vectors,
        "vector_sha": vector_sha,
        "best_site": {lab: res.best_site(lab).name for lab in labels},
        "too_few_rows": too_few,  # labels left out: fewer rows than a probe can be judged on
        "_result": res,
    }


def stage_diff(run: Run) -> dict:
    from rlvr.weightdiff import seed_overlap, update_sparsity

    m, d = run.cfg.models, run.cfg.diff
    others = [
        _file_sha(Path(o) / "model.safetensors") if (Path(o) / "model.safetensors").exists() else o
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
    from rlvr.formats import format_shares_from_log

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


# -- orchestration ---------------------------------------------------------------------


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
    files = sorted(
        [folder / "recipe.toml", folder / "training.json", *folder.glob("*/model.safetensors")]
    )
    organism = Path(run.cfg.task.spec).parent
    files += sorted(organism.glob("*/model.safetensors")) + sorted(organism.glob("logs/*.jsonl"))
    key = ["claim", c.kind, asdict(c), run.seed, {str(f): _file_sha(f) for f in files}]
    return run.cached(
        "claim", key, lambda: measure_claim(c.kind, folder, settings, progress=run.progress)
    )


def run_experiment(
    config: str | Path | Config,
    *,
    stages: Sequence[str] | None = None,
    progress: bool = True,
    force: bool = False,
) -> dict[str, Any]:
    """Run an experiment file end to end; returns the results dict (also written to disk).

    Sets torch's CPU thread count for the process first (:func:`resolve_threads`; recorded
    in ``results.json`` under ``settings``).
    """
    cfg = config if isinstance(config, Config) else load_config(config)
    default = ["claim"] if cfg.claim.kind else [s for s in STAGES if s != "claim"]
    wanted = list(stages) if stages else default
    bad = [s for s in wanted if s not in STAGES]
    if bad:
        raise ValueError(f"unknown stage {bad[0]!r}: use any of {', '.join(STAGES)}")
    threads = resolve_threads(cfg)
    torch.set_num_threads(threads)
    run = Run(cfg, progress=progress, force=force)
    t0 = time.perf_counter()
    res: dict[str, Any] = {
        "config": cfg.to_dict(),
        "settings": {"threads": torch.get_num_threads(), "device": cfg.models.device},
        "versions": _versions(),
        "fingerprints": {w: run.model(w).fingerprint.to_dict() for w in ("base", "rl")},
    }
    if getattr(run.task, "labeller", None) is not None:
        from rlvr.labelling import labeller_report

        res["labeller"] = labeller_report(run.task.labeller)
    from . import hybrid_stages
    from .report import write_report

    bar = stage_bar(wanted, run.progress)
    table = sweep = None
    for stage in bar:
        bar.set_postfix_str(stage)
        if stage == "passk":
            res["passk"] = stage_passk(run)
        elif stage == "extract":
            table = stage_extract(run)
            res["extract"] = run.results["extract"]
        elif stage == "sweep":
            table = table if table is not None else stage_extract(run)
            sweep = stage_sweep(run, table)
            res["sweep"] = {k: v for k, v in sweep.items() if not k.startswith("_")}
        elif stage in hybrid_stages.STAGE_FUNCS:
            if sweep is None:
                table = table if table is not None else stage_extract(run)
                sweep = stage_sweep(run, table)
                res["sweep"] = {k: v for k, v in sweep.items() if not k.startswith("_")}
            if "passk" not in res:
                res["passk"] = stage_passk(run)
            res[stage] = hybrid_stages.STAGE_FUNCS[stage](run, res, table)
        elif stage == "diff":
            res["diff"] = stage_diff(run)
        elif stage == "formats":
            res["formats"] = stage_formats(run)
        elif stage == "claim":
            if not cfg.claim.kind:
                raise ConfigError(
                    f"{cfg.where('claim', 'kind')}: the claim stage needs [claim] kind"
                )
            res["claim"] = stage_claim(run)
    res["seconds"] = round(time.perf_counter() - t0, 1)
    res["cache"] = dict(run.cache_log)
    previous = run.out / "results.json"
    if stages and previous.exists():  # one stage: keep the other stages' results
        old = json.loads(previous.read_text())
        if _study_of(old.get("config")) == _study_of(res["config"]):
            res = {**old, **res}
    write_report(run.out, res, sweep.get("_result") if sweep else None)
    return res
