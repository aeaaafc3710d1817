"""The experiment runner: one TOML file in, ``results.json`` + ``report.md`` + plots out.

:class:`Run` holds what every stage needs (config, task, models, sampling, the cache);
:func:`run_experiment` runs the stages in order. The stages themselves are in
:mod:`steering.stages` and, for the scheduling study (``select``, ``hybrid``,
``temperature``, ``budget``), :mod:`steering.scheduling.stages`.

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
``temperature`` base, RL and hybrids at each of ``[hybrid] temperatures``.
``budget``   recovery against the share of tokens the router touches (threshold sweep).
``diff``     update sparsity base -> RL (bf16 and fp32) and overlap across RL seeds.
``formats``  format shares over RL steps from the training logs.
``claim``    an RL-claim experiment (``[claim]``: ``rlvr.organism.claims``) from its claims
             folder: the only stage a config with ``[claim] kind`` runs by default.
"""

from __future__ import annotations

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
from probes import LabeledTrace
from rlvr.generation.sampling import sample
from rlvr.generation.sampling_params import SamplingParams
from rlvr.measures.passk import correct_counts
from rlvr.tasks import load_task

from .config import Config, ConfigError, load_config
from .config_paths import checkpoint_problem
from .stages import (
    file_sha,
    key_hash,
    stage_claim,
    stage_diff,
    stage_extract,
    stage_formats,
    stage_passk,
    stage_sweep,
    summarize_passk,
)

__all__ = [
    "STAGES",
    "Run",
    "progress_enabled",
    "resolve_threads",
    "run_experiment",
    "stage_bar",
    # the stages, defined in steering.stages and importable from here as before
    "stage_claim",
    "stage_diff",
    "stage_extract",
    "stage_formats",
    "stage_passk",
    "stage_sweep",
    "summarize_passk",
]

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
            from rlvr.text.labelling import load_labeller

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
            k: file_sha(v) for k, v in (("spec", t.spec), ("dev", t.dev), ("test", t.test)) if v
        }
        m = self.cfg.models
        return {
            "fingerprints": self.fingerprints(),
            # the weights' fingerprint is read at bf16 so that loads agree; the numbers a
            # stage computes depend on how the models run, so that is keyed too
            "models": {"dtype": m.dtype, "backend": m.backend, "device": m.device},
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
    def cached(
        self,
        stage: str,
        key: Any,
        fn: Callable[[], dict],
        valid: Callable[[dict], bool] | None = None,
    ) -> dict:
        """``fn()``'s value, kept in ``cache/<stage>.json`` under a hash of ``key``. A kept
        value is used when its key matches and ``valid`` (if given) accepts it, e.g. the
        files it names are still there; otherwise it is computed again."""
        path = self.out / "cache" / f"{stage}.json"
        k = key_hash(key)
        if path.exists() and not self.force:
            d = json.loads(path.read_text())
            if d.get("key") == k and (valid is None or valid(d["value"])):
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
            from rlvr.generation.sampling_vllm import sample_vllm

            path = {"base": self.cfg.models.base, "rl": self.cfg.models.rl}[which]
            return sample_vllm(path, **kw)
        return sample(
            self.model(which), **kw, batch_size=self.cfg.sampling.batch_size, progress=self.progress
        )

    def dev_traces(self, which: str, seed: int) -> list[LabeledTrace]:
        """About ``[extract] n_traces`` samples of ``which`` on the dev split, labelled by the task."""
        problems = self.problems("dev")
        per = max(1, -(-self.cfg.extract.n_traces // len(problems)))
        samples = self.sample(which, problems, per, seed)
        return probes.labelled_traces(self.task, problems, samples)

    def score(self, problems: Sequence[Any], samples) -> np.ndarray:
        """Per-problem correct counts, shape (problems,): :func:`rlvr.measures.passk.correct_counts`."""
        return correct_counts(self.task, problems, samples)


def run_experiment(
    config: str | Path | Config,
    *,
    stages: Sequence[str] | None = None,
    progress: bool = True,
    force: bool = False,
) -> dict[str, Any]:
    """Run an experiment file end to end; returns the results dict (also written to disk).

    Sets torch's CPU thread count for the process first (:func:`resolve_threads`; recorded
    in ``results.json`` under ``settings``), and numpy's and scikit-learn's BLAS threads to
    the same count while it runs, so that the numbers do not depend on ``OMP_NUM_THREADS``.
    """
    cfg = config if isinstance(config, Config) else load_config(config)
    default = ["claim"] if cfg.claim.kind else [s for s in STAGES if s != "claim"]
    wanted = list(stages) if stages else default
    bad = [s for s in wanted if s not in STAGES]
    if bad:
        raise ValueError(f"unknown stage {bad[0]!r}: use any of {', '.join(STAGES)}")
    threads = resolve_threads(cfg)
    torch.set_num_threads(threads)
    from threadpoolctl import threadpool_limits

    # numpy's and scikit-learn's BLAS with the same threads as torch: the probes' numbers
    # change in their last bits with the thread count (and so, rarely, a decision)
    with threadpool_limits(limits=threads):
        return _run_stages(cfg, wanted, progress, force, partial=bool(stages))


def _run_stages(
    cfg: Config, wanted: list[str], progress: bool, force: bool, *, partial: bool
) -> dict[str, Any]:
    run = Run(cfg, progress=progress, force=force)
    t0 = time.perf_counter()
    res: dict[str, Any] = {
        "config": cfg.to_dict(),
        "settings": {"threads": torch.get_num_threads(), "device": cfg.models.device},
        "versions": _versions(),
        "fingerprints": {w: run.model(w).fingerprint.to_dict() for w in ("base", "rl")},
    }
    if getattr(run.task, "labeller", None) is not None:
        from rlvr.text.labelling import labeller_report

        res["labeller"] = labeller_report(run.task.labeller)
    from .report import write_report
    from .scheduling.stages import STAGE_FUNCS

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
        elif stage in STAGE_FUNCS:
            if sweep is None:
                table = table if table is not None else stage_extract(run)
                sweep = stage_sweep(run, table)
                res["sweep"] = {k: v for k, v in sweep.items() if not k.startswith("_")}
            if "passk" not in res:
                res["passk"] = stage_passk(run)
            res[stage] = STAGE_FUNCS[stage](run, res, table)
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
    if partial and previous.exists():  # some stages: keep the other stages' results
        old = json.loads(previous.read_text())
        same_models = old.get("fingerprints") == res.get("fingerprints")
        if _study_of(old.get("config")) == _study_of(res["config"]) and same_models:
            res = {**old, **res}
    write_report(run.out, res, sweep.get("_result") if sweep else None)
    return res
