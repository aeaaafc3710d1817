"""Experiment configuration: one TOML file, validated before any model is loaded.

Every section and key is declared below with its default. An unknown key, a wrong type,
a value out of range, a missing model folder or data file, ``k`` larger than ``n``, a site
out of range or a label the task does not know is reported with the key and its line in
the file, before anything heavy happens (no model is loaded; the module itself imports
neither torch nor scikit-learn). Relative paths are resolved against the repository root
when they exist there, else against the config's folder.
"""

from __future__ import annotations

import json
import math
import os
import re
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .vocab import (
    BACKENDS,
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
    TASK_KINDS,
    TORCH_DTYPES,
)

REPO_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(ValueError):
    """A problem in an experiment file, with the key and line it concerns."""


@dataclass
class ExperimentSection:
    name: str = "experiment"
    output: str = "runs/experiment"
    seed: int = 0
    threads: int = 0  # torch CPU threads; 0: 1 on a CPU device, torch's default on a GPU


@dataclass
class ModelsSection:
    base: str = ""
    rl: str = ""
    rl_other_seeds: list[str] = field(default_factory=list)
    backend: str = "hf"
    device: str = "cpu"
    dtype: str = "float32"


@dataclass
class TaskSection:
    kind: str = "organism"
    spec: str = ""
    dev: str = ""
    test: str = ""
    classes: list[str] = field(default_factory=list)
    n_dev: int = 32
    n_test: int = 200
    labeller: str = "rule"  # gsm8k/math500: "rule", a fitted .joblib or an LLM checkpoint


@dataclass
class SamplingSection:
    n: int = 64
    ks: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 16, 32, 64])
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 0  # 0: the task's budget
    batch_size: int = 512
    backend: str = "hf"  # or "vllm" for real models on a GPU


@dataclass
class ExtractSection:
    n_traces: int = 256
    sites: list[str] = field(default_factory=lambda: ["all"])
    pooling: str = "decision"
    labels: list[str] = field(default_factory=list)
    method: str = "diffmean"
    baseline: str = "rest"


@dataclass
class SweepSection:
    folds: int = 5
    n_boot: int = 200
    n_random: int = 20
    probe: str = "diffmean"


@dataclass
class HybridSection:
    labels: list[str] = field(default_factory=list)  # what routers may fire (default: all)
    classes: list[str] = field(default_factory=list)  # test classes of the hybrid runs
    n_problems: int = 0  # per class (0: every test problem of [task] n_test)
    coefs: list[float] = field(default_factory=lambda: [0.5, 1.0, 2.0])
    n_sites: int = 2
    routers: list[str] = field(
        default_factory=lambda: [
            "rl",
            "probe",
            "base_probe",
            "ground_truth",
            "every_boundary",
            "first_decision",
        ]
    )
    modes: list[str] = field(default_factory=lambda: ["handoff", "steer"])
    emit: str = "label"  # handoff emission rule of routers with a model (others: "label")
    exclusive: bool = True  # the schedule is the whole schedule (the verdict's setting)
    every_boundary: list[str] = field(default_factory=list)  # default: the first label
    controls: list[str] = field(
        default_factory=lambda: [
            "random_timing",
            "random_any_position",
            "random_vector",
            "bias_only",
            "rerank",
        ]
    )
    thresholds: list[float] = field(default_factory=lambda: [0.5, 0.9])
    temperatures: list[float] = field(default_factory=lambda: [1.0, 0.7, 0.5, 0.0])
    temperature_routers: list[str] = field(default_factory=lambda: ["ground_truth", "rl"])
    n: int = 16
    n_boot: int = 1000


@dataclass
class DiffSection:
    dtypes: list[str] = field(default_factory=lambda: ["bf16", "fp32"])
    tol: float = 1e-5


@dataclass
class FormatsSection:
    logs: list[str] = field(default_factory=list)


@dataclass
class ClaimSection:
    """An RL-claim experiment (``rlvr.organism.claims``): which claim, from which folder."""

    kind: str = ""  # one of CLAIMS; empty: the scheduling study
    folder: str = ""  # a claims folder (its recipe.toml and training.json)
    n: int = 64
    n_problems: int = 64
    ks: list[int] = field(default_factory=lambda: [1, 4, 16, 64])
    n_boot: int = 1000
    min_effect: float = 0.02
    margin: float = 0.1


@dataclass
class Config:
    experiment: ExperimentSection = field(default_factory=ExperimentSection)
    models: ModelsSection = field(default_factory=ModelsSection)
    task: TaskSection = field(default_factory=TaskSection)
    sampling: SamplingSection = field(default_factory=SamplingSection)
    extract: ExtractSection = field(default_factory=ExtractSection)
    sweep: SweepSection = field(default_factory=SweepSection)
    hybrid: HybridSection = field(default_factory=HybridSection)
    diff: DiffSection = field(default_factory=DiffSection)
    formats: FormatsSection = field(default_factory=FormatsSection)
    claim: ClaimSection = field(default_factory=ClaimSection)
    path: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def where(self, section: str, key: str | None = None) -> str:
        """``file:line: [section] key`` of a key, for errors found after loading."""
        text = Path(self.path).read_text() if self.path and Path(self.path).exists() else ""
        return _where(text, self.path, section, key)


# section name -> its dataclass, read off Config's fields
_SECTION_CLASSES = {f.name: f.default_factory for f in fields(Config) if f.name != "path"}

SCHEDULE_ROUTERS = ("ground_truth", "every_boundary", "base_probe")  # need a ground truth

# element types of list-valued keys (strings for every list key not named here)
_LIST_TYPES: dict[str, Any] = {
    "ks": int,
    "coefs": (int, float),
    "thresholds": (int, float),
    "temperatures": (int, float),
}
_SITE_NAME = re.compile(r"^blocks\.(\d+)\.hook_(resid_pre|resid_post)$")
_DEVICE = re.compile(r"^(cpu|mps|cuda(:\d+)?)$")
_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
_WEIGHTS = ("*.safetensors", "*.bin", "*.pt", "*.pth")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")
MAX_SEED = 2**32 - 1  # numpy's and torch's seeds both take [0, 2**32)


def _line_of(text: str, section: str, key: str | None) -> int:
    """Line number (1-based) of ``key`` inside ``[section]`` (or of the section header)."""
    lines = text.splitlines()
    cur = None
    for i, line in enumerate(lines, 1):
        m = re.match(r"^\s*\[([^\]]+)\]\s*(#.*)?$", line)
        if m:
            cur = m.group(1).strip()
            if key is None and cur == section:
                return i
            continue
        if cur == section and key is not None and re.match(rf"^\s*{re.escape(key)}\s*=", line):
            return i
    return 0


def _where(text: str, path: str, section: str, key: str | None = None) -> str:
    line = _line_of(text, section, key)
    name = f"[{section}]" + (f" {key}" if key else "")
    return f"{path}:{line}: {name}" if line else f"{path}: {name}"


def _resolve(p: str, cfg_dir: Path) -> Path:
    q = Path(p)
    if q.is_absolute():
        return q
    if (REPO_ROOT / q).exists():
        return REPO_ROOT / q
    return cfg_dir / q


def _model_config(model_path: Path) -> dict[str, Any] | None:
    cfg = model_path / "config.json"
    if not cfg.is_file():
        return None
    try:
        d = json.loads(cfg.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return d if isinstance(d, dict) else None


def _n_layers(model_path: Path) -> int | None:
    d = _model_config(model_path) or {}
    return d.get("num_hidden_layers") or d.get("n_layer")


def _max_positions(model_path: Path) -> int | None:
    d = _model_config(model_path) or {}
    return d.get("max_position_embeddings") or d.get("n_positions")


def checkpoint_problem(path: Path, given: str) -> str | None:
    """Why ``path`` is not a loadable local checkpoint folder (None when it is one).

    The toolkit never downloads, so a hub id that is not a local folder is refused here
    rather than left to transformers (which retries the network for half a minute).
    """
    if not path.exists():
        if _HUB_ID.match(given):  # "org/name": a hub id, or a relative folder not there
            return (
                f"no checkpoint folder at {given!r} (looked in {path}); the toolkit never "
                f"downloads: if {given!r} is a hub id, fetch it once with `huggingface-cli "
                f"download {given} --local-dir models/{given.split('/')[-1].lower()}` and "
                "give that folder"
            )
        return f"no checkpoint at {given!r} (looked in {path})"
    if not path.is_dir():
        return f"{path} is a file; give the checkpoint folder (with config.json and weights)"
    if not (path / "config.json").is_file():
        return (
            f"{path} has no config.json, so it is not a Hugging Face checkpoint folder: "
            "save the model there with save_pretrained(path)"
        )
    if _model_config(path) is None:
        return f"{path / 'config.json'} is not a JSON object: re-save the model"
    if not any(next(path.glob(g), None) for g in _WEIGHTS):
        return (
            f"{path} has config.json but no weights (*.safetensors or *.bin): "
            "the download or save is incomplete"
        )
    if not any((path / f).is_file() for f in _TOKENIZER_FILES):
        return (
            f"{path} has no tokenizer files ({', '.join(_TOKENIZER_FILES)}): save the "
            "tokenizer there too (tokenizer.save_pretrained(path))"
        )
    return None


def _parse_site(spec: str) -> tuple[int, str]:
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


def load_config(
    path: str | Path, overrides: dict[str, dict[str, Any]] | None = None, check_paths: bool = True
) -> Config:
    """Read and validate an experiment file. Raises :class:`ConfigError` naming key and line.

    ``check_paths=False`` checks keys, types and values only, nothing about this machine
    (e.g. a GPU config on a machine without its GPU, checkpoints or data files).
    """
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"no experiment file at {p}")
    text = p.read_text()
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: not valid TOML ({e})") from e
    for sec, vals in (overrides or {}).items():
        raw.setdefault(sec, {}).update(vals)
    cfg = Config(path=str(p))
    for sec, vals in raw.items():
        if sec not in _SECTION_CLASSES:
            raise ConfigError(
                f"{_where(text, str(p), sec)}: unknown section; use one of "
                f"{', '.join(_SECTION_CLASSES)}"
            )
        if not isinstance(vals, dict):
            raise ConfigError(f"{_where(text, str(p), sec)}: must be a table")
        cls = _SECTION_CLASSES[sec]
        known = {f.name: f for f in fields(cls)}
        obj = getattr(cfg, sec)
        for key, val in vals.items():
            if key not in known:
                raise ConfigError(
                    f"{_where(text, str(p), sec, key)}: unknown key; [{sec}] takes "
                    f"{', '.join(known)}"
                )
            default = getattr(obj, key)
            if (
                isinstance(default, bool) != isinstance(val, bool)
                or (isinstance(default, list) and not isinstance(val, list))
                or (isinstance(default, str) and not isinstance(val, str))
                or (isinstance(default, (int, float)) and not isinstance(val, (int, float)))
            ):
                raise ConfigError(
                    f"{_where(text, str(p), sec, key)}: expected {type(default).__name__}, "
                    f"got {type(val).__name__} ({val!r})"
                )
            if (
                isinstance(default, int)
                and not isinstance(default, bool)
                and not isinstance(val, int)
            ):
                raise ConfigError(
                    f"{_where(text, str(p), sec, key)}: expected an integer, got {val!r}"
                )
            if isinstance(val, float) and not math.isfinite(val):
                raise ConfigError(
                    f"{_where(text, str(p), sec, key)}: must be a finite number, got {val!r}"
                )
            if isinstance(default, list):
                want = _LIST_TYPES.get(key, str)
                bad = [x for x in val if not isinstance(x, want) or isinstance(x, bool)]
                if bad:
                    raise ConfigError(
                        f"{_where(text, str(p), sec, key)}: every entry must be "
                        f"{'a number' if want == (int, float) else want.__name__}, got {bad[0]!r}"
                    )
                nonfinite = [x for x in val if isinstance(x, float) and not math.isfinite(x)]
                if nonfinite:
                    raise ConfigError(
                        f"{_where(text, str(p), sec, key)}: every entry must be a finite "
                        f"number, got {nonfinite[0]!r}"
                    )
            if isinstance(default, float) and isinstance(val, int):
                val = float(val)
            setattr(obj, key, val)
    _validate(cfg, text, p, check_paths)
    return cfg


def _duplicate(xs: list[Any]) -> Any:
    seen: set[Any] = set()
    for x in xs:
        if x in seen:
            return x
        seen.add(x)
    return None


def _load_task(cfg: Config, w: Any) -> Any:
    """The configured task (problem files are read lazily), or a ConfigError at [task]."""
    from rlvr.tasks import load_task

    t = cfg.task
    try:
        return load_task(t.kind, {"dev": t.dev, "test": t.test}, t.spec or None)
    except (ValueError, KeyError, TypeError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"{w('task', 'spec' if t.spec else 'kind')}: {err}") from err


def _check_device(device: str, w: Any) -> None:
    """Is ``device`` there on this machine? (torch is imported only for a non-CPU device)."""
    if device == "cpu":
        return
    import torch

    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
            raise ConfigError(
                f"{w('models', 'device')}: {device!r} but CUDA is not available on this "
                f'machine (torch {torch.__version__}, {build}): use device = "cpu" or run '
                "on a GPU machine"
            )
        index = int(device.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise ConfigError(
                f"{w('models', 'device')}: {device!r} but this machine has "
                f"{torch.cuda.device_count()} CUDA device(s) (cuda:0..."
                f"cuda:{torch.cuda.device_count() - 1})"
            )
    elif device == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"{w('models', 'device')}: MPS is not available on this machine")


def _validate(cfg: Config, text: str, p: Path, check_paths: bool = True) -> None:
    w = lambda sec, key=None: _where(text, str(p), sec, key)  # noqa: E731
    cfg_dir = p.parent
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
    m = cfg.models
    for key in ("base", "rl"):
        val = getattr(m, key)
        if not val:
            raise ConfigError(f"{w('models', key)}: missing; give a checkpoint folder")
        rp = _resolve(val, cfg_dir)
        problem = checkpoint_problem(rp, val) if check_paths else None
        if problem:
            raise ConfigError(f"{w('models', key)}: {problem}")
        setattr(m, key, str(rp) if rp.exists() else val)
    others = [str(_resolve(s, cfg_dir)) for s in m.rl_other_seeds]
    for given, s in zip(m.rl_other_seeds, others):
        problem = checkpoint_problem(Path(s), given) if check_paths else None
        if problem:
            raise ConfigError(f"{w('models', 'rl_other_seeds')}: {problem}")
    m.rl_other_seeds = others
    if m.backend not in BACKENDS:
        raise ConfigError(
            f"{w('models', 'backend')}: unknown backend {m.backend!r}; use hf, "
            "nnsight or transformerlens"
        )
    if not _DEVICE.match(m.device):
        raise ConfigError(
            f'{w("models", "device")}: unknown device {m.device!r}; use "cpu", "cuda", '
            '"cuda:N" or "mps"'
        )
    if check_paths:
        _check_device(m.device, w)
    t = cfg.task
    if t.kind not in TASK_KINDS:
        raise ConfigError(
            f"{w('task', 'kind')}: unknown task {t.kind!r}; use organism, gsm8k or math500"
        )
    if t.spec and t.kind != "organism":
        raise ConfigError(
            f"{w('task', 'spec')}: only the organism task reads a spec; remove it for "
            f"kind = {t.kind!r}"
        )
    for key in ("spec", "dev", "test"):
        val = getattr(t, key)
        if key == "spec" and t.kind != "organism":
            continue
        if not val:
            raise ConfigError(f"{w('task', key)}: missing; give a file path")
        rp = _resolve(val, cfg_dir)
        if check_paths and not rp.exists():
            raise ConfigError(f"{w('task', key)}: no file at {val!r} (looked in {rp})")
        if check_paths and not rp.is_file():
            raise ConfigError(f"{w('task', key)}: {rp} is a folder; give a file")
        setattr(t, key, str(rp))
    if t.labeller != "rule":
        if t.kind == "organism":
            raise ConfigError(
                f"{w('task', 'labeller')}: the organism's spans are exact; a labeller applies "
                "to gsm8k and math500 only (remove the key)"
            )
        rp = _resolve(t.labeller, cfg_dir)
        t.labeller = str(rp) if rp.exists() else t.labeller
        if check_paths:
            from rlvr.labelling import labeller_spec_error

            problem = labeller_spec_error(t.labeller)
            if problem:
                raise ConfigError(f"{w('task', 'labeller')}: {problem}")
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
    max_pos = _max_positions(Path(m.base)) if Path(m.base).is_dir() else None
    if max_pos and s.max_new_tokens >= max_pos:
        raise ConfigError(
            f"{w('sampling', 'max_new_tokens')}: {s.max_new_tokens} new tokens do not fit in "
            f"the base model's {max_pos} positions (prompt included): lower it"
        )

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
    n_layers = _n_layers(Path(m.base)) if Path(m.base).is_dir() else None
    parsed = []
    for spec in e.sites:
        if spec == "all":
            continue
        try:
            layer, kind = _parse_site(spec)
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
    cfg.formats.logs = [str(_resolve(x, cfg_dir)) for x in cfg.formats.logs]
    for x in cfg.formats.logs:
        if check_paths and not Path(x).is_file():
            raise ConfigError(f"{w('formats', 'logs')}: no log file at {x}")
    _check_claim(cfg, w, cfg_dir, check_paths)
    out = Path(cfg.experiment.output)
    cfg.experiment.output = str(out if out.is_absolute() else Path.cwd() / out)
    if check_paths and Path(cfg.experiment.output).is_file():
        raise ConfigError(
            f"{w('experiment', 'output')}: {cfg.experiment.output} is a file; give a folder"
        )
    if check_paths:
        _check_task(cfg, w)


def _check_claim(cfg: Config, w: Any, cfg_dir: Path, check_paths: bool) -> None:
    """``[claim]``: a known claim, settings the measurement accepts, a trained folder."""
    from rlvr.organism.claims.settings import CLAIMS, ClaimSettings

    c = cfg.claim
    if not c.kind:
        if c.folder:
            raise ConfigError(f"{w('claim', 'kind')}: a [claim] folder needs a kind")
        return
    if c.kind not in CLAIMS:
        raise ConfigError(
            f"{w('claim', 'kind')}: unknown claim {c.kind!r}; use one of {', '.join(CLAIMS)}"
        )
    if cfg.task.kind != "organism":
        raise ConfigError(f"{w('task', 'kind')}: the claim experiments run on the organism task")
    try:
        ClaimSettings(
            n=c.n,
            n_problems=c.n_problems,
            ks=tuple(c.ks),
            n_boot=c.n_boot,
            seed=cfg.experiment.seed,
            min_effect=c.min_effect,
            margin=c.margin,
        )
    except ValueError as err:
        key = next(
            (k for k in ("ks", "n_boot", "min_effect", "margin", "n") if k in str(err)), None
        )
        raise ConfigError(f"{w('claim', key)}: {err}") from err
    if not c.folder:
        raise ConfigError(
            f"{w('claim', 'folder')}: missing; give a claims folder, e.g. data/organism-claims"
        )
    folder = _resolve(c.folder, cfg_dir)
    c.folder = str(folder)
    if check_paths:
        for name, what in (("recipe.toml", "its recipe"), ("training.json", "its training record")):
            if not (folder / name).is_file():
                raise ConfigError(
                    f"{w('claim', 'folder')}: {folder} lacks {name} ({what}): train it with "
                    "rsteer organism train --recipe data/organism-claims/recipe.toml --out DIR"
                )


def _check_task(cfg: Config, w: Any) -> None:
    """What only the task knows: its classes, labels, and problems in each split."""
    t, e = cfg.task, cfg.extract
    task = _load_task(cfg, w)
    have = task.classes
    unknown = [c for c in t.classes if c not in have]
    if unknown:
        raise ConfigError(
            f"{w('task', 'classes')}: unknown class {unknown[0]!r}; this task has {have}"
        )
    for split in ("dev", "test"):
        for cls in t.classes or have:
            try:
                n = len(task.problems(split, None if cls == "all" else cls))
            except (ValueError, KeyError, TypeError) as err:
                raise ConfigError(f"{w('task', split)}: cannot read its problems: {err}") from err
            if n == 0:
                raise ConfigError(
                    f"{w('task', split)}: the {split} split has no problems of class "
                    f"{cls!r}; fix the file or [task] classes"
                )
    labels = tuple(task.labels)
    bad = [x for x in e.labels if x not in labels]
    if bad:
        raise ConfigError(
            f"{w('extract', 'labels')}: unknown label {bad[0]!r}; the {t.kind} task labels "
            f"spans as {', '.join(labels)}"
        )
    if e.baseline not in ("rest", "all") and e.baseline not in labels:
        raise ConfigError(
            f"{w('extract', 'baseline')}: unknown label {e.baseline!r}; use 'rest', 'all' or "
            f"one of {', '.join(labels)}"
        )
