"""Problem files: the organism's problems as JSONL, one :class:`~.task.Problem` a line."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from .task import Problem

__all__ = ["read_problems", "write_problems"]


def write_problems(path: str | os.PathLike[str], problems: Iterable[Problem]) -> None:
    """Write problems as JSONL (atomically: a temp file renamed into place)."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for p in problems:
            f.write(json.dumps(p.to_dict()) + "\n")
    os.replace(tmp, path)


def read_problems(path: str | os.PathLike[str], cls: str | None = None) -> list[Problem]:
    """Read problems from JSONL (only those of class ``cls`` when given)."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"no problem file at {path}: write one with write_problems")
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                p = Problem.from_dict(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(
                    f"{path}:{n} is not JSON ({e}): one problem object per line"
                ) from e
            if cls is None or p.cls == cls:
                out.append(p)
    return out
