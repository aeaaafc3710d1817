"""Checks of an experiment file's values, and the order every check runs in.

:func:`validate` runs after the keys and types are read (:func:`steering.config.load_config`):
section by section, each value against its range and the vocabulary
(:mod:`steering.vocab`), with what only this machine can say (checkpoints, files, device,
the task's problems) from :mod:`steering.config_paths`. The first problem found is raised as
a :class:`~steering.config_sections.ConfigError` naming the key and its line. Imports no
torch.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from .config_paths import (
    check_claim,
    check_formats,
    check_models,
    check_output,
    check_task,
    check_task_files,
    checkpoint_layers,
    checkpoint_positions,
)
from .config_sections import MAX_SEED, SCHEDULE_ROUTERS, Config, ConfigError, HybridSection, locate
from .vocab import (
    CONTROLS,
    DIFF_DTYPES,
    EMIT_RULES,
    METHODS,
    MODES,
    POOLINGS,
    ROUTERS,
    SAMPLING_BACKENDS,
    SITE_KINDS,
    SWEEP_PROBES,
    TORCH_DTYPES,
)

__all__ = ["parse_site", "validate"]

_SITE_NAME = re.compile(r"^blocks\.(\d+)\.hook_(resid_pre|resid_post)$")


def validate(cfg: Config, text: str, p: Path, check_paths: bool = True) -> None:
    """Check every section of ``cfg`` (read from ``p``, whose ``text`` locates keys).

    Paths are resolved in place; ``check_paths=False`` checks keys and values only,
    nothing about this machine.
    """
    w = lambda sec, key=None: locate(text, str(p), sec, key)  # noqa: E731
    cfg_dir = p.parent
    _experiment(cfg, w, check_paths)
    check_models(cfg, w, cfg_dir, check_paths)
    check_task_files(cfg, w, cfg_dir, check_paths)
    _task(cfg, w)
    _sampling(cfg, w)
    _extract(cfg, w)
    _hybrid(cfg, w, check_paths)
    _sweep(cfg, w)
    _diff(cfg, w)
    check_formats(cfg, w, cfg_dir, check_paths)
    check_claim(cfg, w, cfg_dir, check_paths)
    check_output(cfg, w, check_paths)
    if check_paths:
        check_task(cfg, w)


def parse_site(spec: str) -> tuple[int, str]:
    """``(layer, kind)`` of a site spec, with :meth:`probes.Site.parse`'s grammar (no torch)."""
    m = _SITE_NAME.match(spec)
    if m:
        return int(m.group(1)), m.group(2)
    layer, _, kind = spec.partition(".")
    kind = kind or "resid_post"
    if layer.isdigit() and kind in SITE_KINDS:
        return int(layer), kind
    raise ValueError(
        f"cannot read a site from {spec!r}: write 'blocks.L.hook_resid_post', 'L', or 'L.resid_pre'"
    )


def _duplicate(xs: list[Any]) -> Any:
    seen: set[Any] = set()
    for x in xs:
        if x in seen:
            return x
        seen.add(x)
    return None


def _experiment(cfg: Config, w: Any, check_paths: bool) -> None:
    ex = cfg.experiment
    if not ex.name.strip():
        raise ConfigError(f'{w("experiment", "name")}: give a name, e.g. "organism"')
    if not ex.output.strip():
        raise ConfigError(f"{w('experiment', 'output')}: give an output folder")
    if not 0 <= ex.seed <= MAX_SEED:
        raise ConfigError(
            f"{w('experiment', 'seed')}: seed = {ex.seed} is out of range; give an integer "
            f"in [0, {MAX_SEED}]"
        )
    cores = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    )
    if ex.threads < 0:
        raise ConfigError(
            f"{w('experiment', 'threads')}: threads = {ex.threads}; give 0 (automatic: 1 on "
            "a CPU device) or a positive number of torch CPU threads"
        )
    if check_paths and ex.threads > cores:
        raise ConfigError(
            f"{w('experiment', 'threads')}: {ex.threads} threads on a machine with {cores} CPU "
            f"core(s) oversubscribes them (each batch waits on the slowest thread): use at most "
            f"{cores}, or 0 for automatic"
        )


def _task(cfg: Config, w: Any) -> None:
    """The model dtype, then ``[task]``'s sizes and classes."""
    m, t = cfg.models, cfg.task
    if m.dtype not in TORCH_DTYPES:
        raise ConfigError(
            f"{w('models', 'dtype')}: unknown dtype {m.dtype!r}; use one of "
            f"{', '.join(TORCH_DTYPES)}"
        )
    for key in ("n_dev", "n_test"):
        if getattr(t, key) < 1:
            raise ConfigError(f"{w('task', key)}: must be >= 1 (problems per class)")
    dup = _duplicate(t.classes)
    if dup is not None:
        raise ConfigError(f"{w('task', 'classes')}: {dup!r} is listed twice")


def _sampling(cfg: Config, w: Any) -> None:
    m = cfg.models
    s = cfg.sampling
    if s.n < 1:
        raise ConfigError(f"{w('sampling', 'n')}: n must be >= 1")
    if s.max_new_tokens < 0:
        raise ConfigError(f"{w('sampling', 'max_new_tokens')}: must be >= 0 (0: the task's budget)")
    if s.batch_size < 1:
        raise ConfigError(f"{w('sampling', 'batch_size')}: must be >= 1 (rows per forward)")
    bad_k = [k for k in s.ks if k > s.n]
    if bad_k:
        raise ConfigError(
            f"{w('sampling', 'ks')}: k={bad_k[0]} is larger than n={s.n} "
            "samples; raise n or drop that k"
        )
    if not s.ks or s.ks[0] != 1 or s.ks != sorted(set(s.ks)):
        raise ConfigError(
            f"{w('sampling', 'ks')}: give increasing k values starting at 1, "
            f"e.g. [1, 2, 4, 8]; got {s.ks}"
        )
    if s.backend not in SAMPLING_BACKENDS:
        raise ConfigError(f"{w('sampling', 'backend')}: use 'hf' or 'vllm'")
    if s.backend == "vllm" and m.device == "cpu":
        raise ConfigError(
            f"{w('sampling', 'backend')}: vllm samples on a GPU, but [models] device is "
            '"cpu": use backend = "hf" or device = "cuda"'
        )
    if not 0 < s.top_p <= 1:
        raise ConfigError(f"{w('sampling', 'top_p')}: need 0 < top_p <= 1, got {s.top_p}")
    if s.temperature < 0:
        raise ConfigError(f"{w('sampling', 'temperature')}: need temperature >= 0")
    if s.temperature == 0 and s.n > 1:
        raise ConfigError(
            f"{w('sampling', 'temperature')}: temperature = 0 is greedy decoding, so all "
            f"n = {s.n} samples of a problem are the same and pass@k = pass@1: use a "
            "temperature > 0 (e.g. 0.6 or 1.0), or n = 1"
        )
    max_pos = checkpoint_positions(Path(m.base)) if Path(m.base).is_dir() else None
    if max_pos and s.max_new_tokens >= max_pos:
        raise ConfigError(
            f"{w('sampling', 'max_new_tokens')}: {s.max_new_tokens} new tokens do not fit in "
            f"the base model's {max_pos} positions (prompt included): lower it"
        )


def _extract(cfg: Config, w: Any) -> None:
    m = cfg.models
    e = cfg.extract
    if e.n_traces < 1:
        raise ConfigError(
            f"{w('extract', 'n_traces')}: n_traces = {e.n_traces}; give the number of "
            "labelled dev samples to extract from (>= 1, e.g. 256)"
        )
    if e.pooling not in POOLINGS:
        raise ConfigError(
            f"{w('extract', 'pooling')}: unknown pooling {e.pooling!r}; use one "
            f"of {', '.join(POOLINGS)}"
        )
    if e.method not in METHODS:
        raise ConfigError(
            f"{w('extract', 'method')}: unknown method {e.method!r}; use one of "
            f"{', '.join(METHODS)}"
        )
    if not e.sites:
        raise ConfigError(f'{w("extract", "sites")}: give at least one site, e.g. ["all"] or ["1"]')
    if "all" in e.sites and len(e.sites) > 1:
        raise ConfigError(
            f'{w("extract", "sites")}: "all" already means every layer; give ["all"] '
            "alone or list the sites"
        )
    n_layers = checkpoint_layers(Path(m.base)) if Path(m.base).is_dir() else None
    parsed = []
    for spec in e.sites:
        if spec == "all":
            continue
        try:
            layer, kind = parse_site(spec)
        except ValueError as err:
            raise ConfigError(f"{w('extract', 'sites')}: {err}") from err
        if n_layers is not None and layer >= n_layers:
            raise ConfigError(
                f"{w('extract', 'sites')}: site {spec!r} is out of range: the base "
                f"model has {n_layers} layers (0..{n_layers - 1})"
            )
        parsed.append((layer, kind))
    dup = _duplicate(parsed)
    if dup is not None:
        raise ConfigError(f"{w('extract', 'sites')}: layer {dup[0]} {dup[1]} is listed twice")
    dup = _duplicate(e.labels)
    if dup is not None:
        raise ConfigError(f"{w('extract', 'labels')}: {dup!r} is listed twice")


def _hybrid(cfg: Config, w: Any, check_paths: bool) -> None:
    t, e = cfg.task, cfg.extract
    h = cfg.hybrid
    for key, allowed in (
        ("routers", ROUTERS),
        ("modes", MODES),
        ("controls", CONTROLS),
        ("temperature_routers", ROUTERS),
    ):
        bad = [x for x in getattr(h, key) if x not in allowed]
        if bad:
            raise ConfigError(
                f"{w('hybrid', key)}: unknown {bad[0]!r}; use any of {', '.join(allowed)}"
            )
    if h.emit not in EMIT_RULES:
        raise ConfigError(
            f"{w('hybrid', 'emit')}: unknown emission rule {h.emit!r}; use one of "
            f"{', '.join(EMIT_RULES)}"
        )
    if h.emit != "label" and "handoff" not in h.modes:
        raise ConfigError(
            f"{w('hybrid', 'emit')}: the emission rule applies to handoff mode, which "
            "[hybrid] modes does not run; add 'handoff' or drop emit"
        )
    if t.kind != "organism":  # only the organism's task has a ground-truth schedule
        defaults = HybridSection()
        for key in ("routers", "temperature_routers"):  # defaults: what the task supports
            if getattr(h, key) == getattr(defaults, key):
                setattr(h, key, [x for x in getattr(h, key) if x not in SCHEDULE_ROUTERS])
        for key in ("routers", "temperature_routers"):
            bad = [x for x in getattr(h, key) if x in SCHEDULE_ROUTERS]
            if bad:
                raise ConfigError(
                    f"{w('hybrid', key)}: {bad[0]!r} needs a ground-truth schedule, which the "
                    f"{t.kind} task does not have (real reasoning cannot say where a strategy "
                    "helps); drop it, or use the rl and probe routers"
                )
    extra = [x for x in h.temperature_routers if x not in h.routers]
    if extra:
        raise ConfigError(
            f"{w('hybrid', 'temperature_routers')}: {extra[0]!r} is not in [hybrid] routers"
        )
    if any(not 0 <= x < 1 for x in h.thresholds):
        raise ConfigError(f"{w('hybrid', 'thresholds')}: thresholds are probabilities in [0, 1)")
    if any(not 0 <= x <= 10 for x in h.temperatures) or len(set(h.temperatures)) != len(
        h.temperatures
    ):
        raise ConfigError(
            f"{w('hybrid', 'temperatures')}: give distinct temperatures in [0, 10] (0: greedy)"
        )
    for key in ("routers", "modes", "coefs"):
        if not getattr(h, key):
            raise ConfigError(f"{w('hybrid', key)}: give at least one")
    for key in ("n", "n_sites", "n_boot"):
        if getattr(h, key) < 1:
            raise ConfigError(f"{w('hybrid', key)}: must be >= 1")
    if h.n_problems < 0:
        raise ConfigError(f"{w('hybrid', 'n_problems')}: must be >= 0 (0: all test problems)")
    if h.classes and t.classes:
        bad = [c for c in h.classes if c not in t.classes]
        if bad:
            raise ConfigError(
                f"{w('hybrid', 'classes')}: {bad[0]!r} is not one of [task] classes {t.classes}"
            )
    if h.labels and h.every_boundary:
        bad = [x for x in h.every_boundary if x not in h.labels]
        if bad:
            raise ConfigError(
                f"{w('hybrid', 'every_boundary')}: {bad[0]!r} is not one of [hybrid] labels"
            )
    if check_paths and h.labels:
        from rlvr.tasks import load_task as _load

        known = _load(t.kind, {"dev": t.dev, "test": t.test}, t.spec or None).labels
        bad = [x for x in h.labels if x not in known]
        if bad:
            raise ConfigError(
                f"{w('hybrid', 'labels')}: {bad[0]!r} is not a label of the {t.kind} task; "
                f"use any of {', '.join(known)}"
            )
    if e.labels and h.labels and not set(h.labels) <= set(e.labels):
        missing = sorted(set(h.labels) - set(e.labels))
        raise ConfigError(
            f"{w('hybrid', 'labels')}: {missing} are not extracted; add them to [extract] labels"
        )


def _sweep(cfg: Config, w: Any) -> None:
    """``[sweep]``, and ``[extract] baseline`` against the extracted labels."""
    e = cfg.extract
    sw = cfg.sweep
    if sw.probe not in SWEEP_PROBES:
        raise ConfigError(f"{w('sweep', 'probe')}: use 'diffmean' or 'logistic'")
    for key, lo in (("folds", 2), ("n_boot", 1), ("n_random", 1)):
        if getattr(sw, key) < lo:
            raise ConfigError(f"{w('sweep', key)}: need {key} >= {lo}, got {getattr(sw, key)}")
    if sw.folds > e.n_traces:
        raise ConfigError(
            f"{w('sweep', 'folds')}: {sw.folds} folds need at least as many traces; "
            f"[extract] n_traces is {e.n_traces}"
        )
    if e.baseline not in ("rest", "all") and e.labels and e.baseline not in e.labels:
        raise ConfigError(
            f"{w('extract', 'baseline')}: use 'rest', 'all' or one of the "
            f"extracted labels {e.labels}"
        )


def _diff(cfg: Config, w: Any) -> None:
    if not cfg.diff.dtypes:
        raise ConfigError(f"{w('diff', 'dtypes')}: give at least one, e.g. ['bf16']")
    bad = [d for d in cfg.diff.dtypes if d not in DIFF_DTYPES]
    if bad:
        raise ConfigError(
            f"{w('diff', 'dtypes')}: unknown dtype {bad[0]!r}; use bf16, fp16 or fp32"
        )
    dup = _duplicate(cfg.diff.dtypes)
    if dup is not None:
        raise ConfigError(f"{w('diff', 'dtypes')}: {dup!r} is listed twice")
    if cfg.diff.tol < 0:
        raise ConfigError(
            f"{w('diff', 'tol')}: tol = {cfg.diff.tol}; a parameter counts as updated when "
            "|delta| > tol, so give tol >= 0 (e.g. 1e-5)"
        )
