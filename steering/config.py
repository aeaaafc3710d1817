"""Experiment configuration: one TOML file, validated before any model is loaded.

Every section and key is declared with its default in :mod:`steering.config_sections`. An
unknown key, a wrong type, a value out of range, a missing model folder or data file, ``k``
larger than ``n``, a site out of range or a label the task does not know is reported with
the key and its line in the file, before anything heavy happens (no model is loaded; the
module itself imports neither torch nor scikit-learn). Relative paths are resolved against
the repository root when they exist there, else against the config's folder.

This module reads the file (:func:`load_config`: sections, keys and types);
:mod:`steering.config_checks` checks the values and :mod:`steering.config_paths` what only
this machine can say (checkpoints, files, device, the task's problems). The sections are
declared in :mod:`steering.config_sections`; import their names from there.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any

from .config_checks import validate
from .config_sections import Config, ConfigError, locate

# what a caller of load_config needs; each other name lives where it is defined
# (config_sections: the sections and their words; config_checks; config_paths)
__all__ = ["Config", "ConfigError", "load_config"]

# section name -> its dataclass, read off Config's fields
_SECTION_CLASSES = {f.name: f.default_factory for f in fields(Config) if f.name != "path"}

# element types of list-valued keys (strings for every list key not named here)
_LIST_TYPES: dict[str, Any] = {
    "ks": int,
    "coefs": (int, float),
    "thresholds": (int, float),
    "temperatures": (int, float),
}


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
                f"{locate(text, str(p), sec)}: unknown section; use one of "
                f"{', '.join(_SECTION_CLASSES)}"
            )
        if not isinstance(vals, dict):
            raise ConfigError(f"{locate(text, str(p), sec)}: must be a table")
        cls = _SECTION_CLASSES[sec]
        known = {f.name: f for f in fields(cls)}
        obj = getattr(cfg, sec)
        for key, val in vals.items():
            if key not in known:
                raise ConfigError(
                    f"{locate(text, str(p), sec, key)}: unknown key; [{sec}] takes "
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
                    f"{locate(text, str(p), sec, key)}: expected {type(default).__name__}, "
                    f"got {type(val).__name__} ({val!r})"
                )
            if (
                isinstance(default, int)
                and not isinstance(default, bool)
                and not isinstance(val, int)
            ):
                raise ConfigError(
                    f"{locate(text, str(p), sec, key)}: expected an integer, got {val!r}"
                )
            if isinstance(val, float) and not math.isfinite(val):
                raise ConfigError(
                    f"{locate(text, str(p), sec, key)}: must be a finite number, got {val!r}"
                )
            if isinstance(default, list):
                want = _LIST_TYPES.get(key, str)
                bad = [x for x in val if not isinstance(x, want) or isinstance(x, bool)]
                if bad:
                    raise ConfigError(
                        f"{locate(text, str(p), sec, key)}: every entry must be "
                        f"{'a number' if want == (int, float) else want.__name__}, got {bad[0]!r}"
                    )
                nonfinite = [x for x in val if isinstance(x, float) and not math.isfinite(x)]
                if nonfinite:
                    raise ConfigError(
                        f"{locate(text, str(p), sec, key)}: every entry must be a finite "
                        f"number, got {nonfinite[0]!r}"
                    )
            if isinstance(default, float) and isinstance(val, int):
                val = float(val)
            setattr(obj, key, val)
    validate(cfg, text, p, check_paths)
    return cfg
