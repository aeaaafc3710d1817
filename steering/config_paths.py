"""What only this machine can say about an experiment file: checkpoints, data files, the
device, the task's problems, the claims folder.

Relative paths are resolved against the repository root when they exist there, else
against the config's folder. ``check_paths=False`` (``rsteer validate`` of a config meant
for another machine) skips every look at the disk and the device, not the resolving.
Imports no torch (the device check imports it only for a non-CPU device).
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

from .config_sections import Config, ConfigError
from .vocab import BACKENDS, TASK_KINDS

__all__ = [
    "REPO_ROOT",
    "check_claim",
    "check_formats",
    "check_models",
    "check_output",
    "check_task",
    "check_task_files",
    "checkpoint_layers",
    "checkpoint_positions",
    "checkpoint_problem",
    "resolve",
]

REPO_ROOT = Path(__file__).resolve().parent.parent

_DEVICE = re.compile(r"^(cpu|mps|cuda(:\d+)?)$")
_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
_WEIGHTS = ("*.safetensors", "*.bin", "*.pt", "*.pth")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")


def resolve(p: str, cfg_dir: Path) -> Path:
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


def checkpoint_layers(model_path: Path) -> int | None:
    d = _model_config(model_path) or {}
    return d.get("num_hidden_layers") or d.get("n_layer")


def checkpoint_positions(model_path: Path) -> int | None:
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


def check_models(cfg: Config, w: Any, cfg_dir: Path, check_paths: bool) -> None:
    """``[models]``: local checkpoint folders (never a download), backend, device."""
    m = cfg.models
    for key in ("base", "rl"):
        val = getattr(m, key)
        if not val:
            raise ConfigError(f"{w('models', key)}: missing; give a checkpoint folder")
        rp = resolve(val, cfg_dir)
        problem = checkpoint_problem(rp, val) if check_paths else None
        if problem:
            raise ConfigError(f"{w('models', key)}: {problem}")
        setattr(m, key, str(rp) if rp.exists() else val)
    others = [str(resolve(s, cfg_dir)) for s in m.rl_other_seeds]
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


def check_task_files(cfg: Config, w: Any, cfg_dir: Path, check_paths: bool) -> None:
    """``[task]``: a known kind, its spec and problem files, the labeller's file."""
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
        rp = resolve(val, cfg_dir)
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
        rp = resolve(t.labeller, cfg_dir)
        t.labeller = str(rp) if rp.exists() else t.labeller
        if check_paths:
            from rlvr.text.labelling import labeller_spec_error

            problem = labeller_spec_error(t.labeller)
            if problem:
                raise ConfigError(f"{w('task', 'labeller')}: {problem}")


def check_formats(cfg: Config, w: Any, cfg_dir: Path, check_paths: bool) -> None:
    """``[formats] logs``: training logs on this machine."""
    cfg.formats.logs = [str(resolve(x, cfg_dir)) for x in cfg.formats.logs]
    for x in cfg.formats.logs:
        if check_paths and not Path(x).is_file():
            raise ConfigError(f"{w('formats', 'logs')}: no log file at {x}")


def check_output(cfg: Config, w: Any, check_paths: bool) -> None:
    """``[experiment] output``: made absolute (against the working folder), not a file."""
    out = Path(cfg.experiment.output)
    cfg.experiment.output = str(out if out.is_absolute() else Path.cwd() / out)
    if check_paths and Path(cfg.experiment.output).is_file():
        raise ConfigError(
            f"{w('experiment', 'output')}: {cfg.experiment.output} is a file; give a folder"
        )


def check_claim(cfg: Config, w: Any, cfg_dir: Path, check_paths: bool) -> None:
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
    folder = resolve(c.folder, cfg_dir)
    c.folder = str(folder)
    if check_paths:
        for name, what in (("recipe.toml", "its recipe"), ("training.json", "its training record")):
            if not (folder / name).is_file():
                raise ConfigError(
                    f"{w('claim', 'folder')}: {folder} lacks {name} ({what}): train it with "
                    "rsteer organism train --recipe data/organism-claims/recipe.toml --out DIR"
                )
        _check_claim_organism(cfg, w, folder)
    _check_claim_sampling(cfg, w)


def _check_claim_organism(cfg: Config, w: Any, folder: Path) -> None:
    """A claim measures the organism its claims recipe names: [task] must name that one too
    (it is recorded with the results)."""
    from rlvr.organism.claims.recipe import load_claims

    organism = load_claims(folder / "recipe.toml").organism_dir.resolve()
    spec = Path(cfg.task.spec).resolve() if cfg.task.spec else None
    if spec is None or spec.parent != organism:
        raise ConfigError(
            f"{w('task', 'spec')}: the claims in {folder} are measured on the organism in "
            f"{organism} (its recipe says so), not on {spec}: give {organism / 'recipe.toml'}"
        )


def _check_claim_sampling(cfg: Config, w: Any) -> None:
    """The claims sample at T = 1, top-p 1 with [claim] n and ks; other [sampling] values
    would be recorded but not used."""
    from .config_sections import SamplingSection

    default, given = SamplingSection(), cfg.sampling
    for key in ("n", "ks", "temperature", "top_p", "max_new_tokens", "backend"):
        if getattr(given, key) != getattr(default, key):
            raise ConfigError(
                f"{w('sampling', key)}: a claim samples at T = 1, top-p 1, the task's budget, "
                "with [claim] n and ks; it would not use this. Remove it ([sampling] may set "
                "batch_size only)."
            )


def check_task(cfg: Config, w: Any) -> None:
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
