"""Experiment configuration: one TOML file, validated before any model is loaded.

Every section and key is declared below with its default. An unknown key, a missing
model path, ``k`` larger than ``n`` or a site out of range is reported with the key and
its line in the file, before anything heavy happens. Relative paths are resolved
against the repository root when they exist there, else against the config's folder.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(ValueError):
    """A problem in an experiment file, with the key and line it concerns."""


@dataclass
class ExperimentSection:
    name: str = "experiment"
    output: str = "runs/experiment"
    seed: int = 0


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
    labels: list[str] = field(default_factory=list)
    coefs: list[float] = field(default_factory=lambda: [0.5, 1.0, 2.0])
    n_sites: int = 2
    routers: list[str] = field(default_factory=lambda: ["rl", "probe"])
    modes: list[str] = field(default_factory=lambda: ["steer", "handoff"])
    controls: list[str] = field(
        default_factory=lambda: ["random_rate", "random_vector", "bias_only", "rerank"]
    )
    thresholds: list[float] = field(default_factory=lambda: [0.0, 0.5, 0.8, 0.95])
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
    path: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# section name -> its dataclass, read off Config's fields
_SECTION_CLASSES = {f.name: f.default_factory for f in fields(Config) if f.name != "path"}
ROUTERS = ("rl", "probe")  # random timing is the random_rate control of each router
from .hybrid import MODES  # noqa: E402  (one definition of the hybrid's modes)

CONTROLS = ("random_rate", "random_vector", "bias_only", "rerank")


# element types of list-valued keys (strings otherwise)
_LIST_TYPES: dict[str, Any] = {"ks": int, "coefs": (int, float), "thresholds": (int, float)}
TORCH_DTYPES = ("float32", "bfloat16", "float16")


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


def _n_layers(model_path: Path) -> int | None:
    cfg = model_path / "config.json"
    if not cfg.exists():
        return None
    d = json.loads(cfg.read_text())
    return d.get("num_hidden_layers") or d.get("n_layer")


def load_config(
    path: str | Path, overrides: dict[str, dict[str, Any]] | None = None, check_paths: bool = True
) -> Config:
    """Read and validate an experiment file. Raises :class:`ConfigError` naming key and line.

    ``check_paths=False`` checks keys, types and values only (e.g. a GPU config on a
    machine without its checkpoints or data files).
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
            if isinstance(default, list) and key in _LIST_TYPES:
                want = _LIST_TYPES[key]
                bad = [x for x in val if not isinstance(x, want) or isinstance(x, bool)]
                if bad:
                    raise ConfigError(
                        f"{_where(text, str(p), sec, key)}: every entry must be "
                        f"{'a number' if want == (int, float) else want.__name__}, got {bad[0]!r}"
                    )
            if isinstance(default, float) and isinstance(val, int):
                val = float(val)
            setattr(obj, key, val)
    _validate(cfg, text, p, check_paths)
    return cfg


def _validate(cfg: Config, text: str, p: Path, check_paths: bool = True) -> None:
    w = lambda sec, key=None: _where(text, str(p), sec, key)  # noqa: E731
    cfg_dir = p.parent
    m = cfg.models
    for key in ("base", "rl"):
        val = getattr(m, key)
        if not val:
            raise ConfigError(f"{w('models', key)}: missing; give a checkpoint folder")
        rp = _resolve(val, cfg_dir)
        if check_paths and not rp.exists() and not re.fullmatch(r"[\w.-]+/[\w.-]+", val):
            raise ConfigError(f"{w('models', key)}: no checkpoint at {val!r} (looked in {rp})")
        setattr(m, key, str(rp) if rp.exists() else val)
    m.rl_other_seeds = [str(_resolve(s, cfg_dir)) for s in m.rl_other_seeds]
    for s in m.rl_other_seeds:
        if check_paths and not Path(s).exists():
            raise ConfigError(f"{w('models', 'rl_other_seeds')}: no checkpoint at {s}")
    if m.backend not in ("hf", "nnsight", "transformerlens"):
        raise ConfigError(
            f"{w('models', 'backend')}: unknown backend {m.backend!r}; use hf, "
            "nnsight or transformerlens"
        )
    t = cfg.task
    if t.kind not in ("organism", "gsm8k", "math500"):
        raise ConfigError(
            f"{w('task', 'kind')}: unknown task {t.kind!r}; use organism, gsm8k or math500"
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
    if check_paths and t.classes:
        from rlvr.tasks import load_task

        have = load_task(t.kind, {"dev": t.dev, "test": t.test}, t.spec or None).classes
        unknown = [c for c in t.classes if c not in have]
        if unknown:
            raise ConfigError(
                f"{w('task', 'classes')}: unknown class {unknown[0]!r}; this task has {have}"
            )
    s = cfg.sampling
    if s.n < 1:
        raise ConfigError(f"{w('sampling', 'n')}: n must be >= 1")
    if s.max_new_tokens < 0 or s.batch_size < 1:
        raise ConfigError(
            f"{w('sampling')}: need max_new_tokens >= 0 (0: the task's budget) and batch_size >= 1"
        )
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
    if s.backend not in ("hf", "vllm"):
        raise ConfigError(f"{w('sampling', 'backend')}: use 'hf' or 'vllm'")
    if not 0 < s.top_p <= 1 or s.temperature < 0:
        raise ConfigError(f"{w('sampling')}: need 0 < top_p <= 1 and temperature >= 0")
    from probes.extract import POOLINGS
    from probes.fit import METHODS
    from probes.sites import Site

    e = cfg.extract
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
    n_layers = _n_layers(Path(m.base)) if Path(m.base).exists() else None
    for spec in e.sites:
        if spec == "all":
            continue
        try:
            site = Site.parse(spec)
        except (ValueError, TypeError) as err:
            raise ConfigError(f"{w('extract', 'sites')}: {err}") from err
        if n_layers is not None and site.layer >= n_layers:
            raise ConfigError(
                f"{w('extract', 'sites')}: site {spec!r} is out of range: the base "
                f"model has {n_layers} layers (0..{n_layers - 1})"
            )
    h = cfg.hybrid
    for key, allowed in (("routers", ROUTERS), ("modes", MODES), ("controls", CONTROLS)):
        bad = [x for x in getattr(h, key) if x not in allowed]
        if bad:
            raise ConfigError(
                f"{w('hybrid', key)}: unknown {bad[0]!r}; use any of {', '.join(allowed)}"
            )
    if any(not 0 <= x < 1 for x in h.thresholds):
        raise ConfigError(f"{w('hybrid', 'thresholds')}: thresholds are probabilities in [0, 1)")
    for key in ("routers", "modes", "coefs"):
        if not getattr(h, key):
            raise ConfigError(f"{w('hybrid', key)}: give at least one")
    for key in ("n", "n_sites", "n_boot"):
        if getattr(h, key) < 1:
            raise ConfigError(f"{w('hybrid', key)}: must be >= 1")
    if e.labels and h.labels and not set(h.labels) <= set(e.labels):
        missing = sorted(set(h.labels) - set(e.labels))
        raise ConfigError(
            f"{w('hybrid', 'labels')}: {missing} are not extracted; add them to [extract] labels"
        )
    sw = cfg.sweep
    if sw.probe not in ("diffmean", "logistic"):
        raise ConfigError(f"{w('sweep', 'probe')}: use 'diffmean' or 'logistic'")
    if sw.folds < 2 or sw.n_boot < 1 or sw.n_random < 1:
        raise ConfigError(f"{w('sweep')}: need folds >= 2, n_boot >= 1 and n_random >= 1")
    if e.baseline not in ("rest", "all") and e.labels and e.baseline not in e.labels:
        raise ConfigError(
            f"{w('extract', 'baseline')}: use 'rest', 'all' or one of the "
            f"extracted labels {e.labels}"
        )
    if not cfg.diff.dtypes:
        raise ConfigError(f"{w('diff', 'dtypes')}: give at least one, e.g. ['bf16']")
    bad = [d for d in cfg.diff.dtypes if d not in ("bf16", "fp16", "fp32")]
    if bad:
        raise ConfigError(
            f"{w('diff', 'dtypes')}: unknown dtype {bad[0]!r}; use bf16, fp16 or fp32"
        )
    cfg.formats.logs = [str(_resolve(x, cfg_dir)) for x in cfg.formats.logs]
    for x in cfg.formats.logs:
        if check_paths and not Path(x).exists():
            raise ConfigError(f"{w('formats', 'logs')}: no log at {x}")
    out = Path(cfg.experiment.output)
    cfg.experiment.output = str(out if out.is_absolute() else Path.cwd() / out)
