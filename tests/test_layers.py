"""The packages' floors: every import in the source, lazy ones included, flows downward."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BASE = {"rlvr.checks", "rlvr.lazy"}

# floor -> the floors its modules may import (their own floor always allowed)
MAY_IMPORT = {
    "rlvr.checks": set(),
    "rlvr.lazy": set(),
    "rlvr.generation": BASE,
    "rlvr.measures": BASE,
    "rlvr.text": BASE | {"rlvr.generation"},
    "rlvr.organism": BASE | {"rlvr.generation", "rlvr.measures", "rlvr.text"},
    "rlvr.tasks": BASE | {"rlvr.generation", "rlvr.measures", "rlvr.text", "rlvr.organism"},
    "rlvr": BASE | {"rlvr.generation", "rlvr.measures", "rlvr.text"},  # the package's exports
    "probes": {"rlvr.generation"},
    "steering": {"rlvr", "probes"},
}


def floor_of(module: str) -> str | None:
    """The floor a dotted module name belongs to (the longest matching key)."""
    best = None
    for floor in MAY_IMPORT:
        if (module == floor or module.startswith(floor + ".")) and (
            best is None or len(floor) > len(best)
        ):
            best = floor
    return best


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) for every import in a file, relative ones resolved."""
    package = module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # `from pkg import submodule` imports the submodule
            out += [(node.lineno, f"{mod}.{a.name}") for a in node.names]
    return out


def allowed(source: str, target: str) -> bool:
    src, dst = floor_of(source), floor_of(target)
    if dst is None or src == dst:
        return True  # third-party, or the same floor
    ok = MAY_IMPORT[src]
    return any(dst == f or dst.startswith(f + ".") for f in ok)


SOURCES = sorted(p for pkg in ("rlvr", "probes", "steering") for p in (ROOT / pkg).rglob("*.py"))


def test_every_source_module_has_a_floor():
    assert SOURCES
    assert [p for p in SOURCES if floor_of(module_name(p)) is None] == []


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_flow_downward(path):
    here = module_name(path)
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {target}"
        for line, target in imported_modules(path)
        if not allowed(here, target)
    ]
    assert wrong == []


def test_the_floor_check_sees_an_upward_import():
    assert not allowed("rlvr.generation.sampling", "rlvr.organism.task.PermutationChain")
    assert not allowed("rlvr.measures.passk.estimators", "rlvr.text.answers.verify")
    assert not allowed("probes.fit", "steering.steer.Steer")
    assert not allowed("rlvr.organism.grpo", "probes.handles.wrap")
    assert allowed("rlvr.organism.generate", "rlvr.generation.sampling.sample")
    assert allowed("steering.cli", "rlvr.tasks.load_task")
