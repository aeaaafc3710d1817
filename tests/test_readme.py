"""The README's Python examples run as written (on the shipped organism)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 2
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)  # noqa: S102
    assert (tmp_path / "check.safetensors").exists()
    assert 0.0 <= namespace["out"].steered_fraction <= 1.0


def test_ci_runs_the_readme_test_command():
    cmd = re.findall(r"```bash\n(.*?)\n```", README.read_text(), flags=re.S)[1].strip()
    ci = (README.parent / ".ci" / "run").read_text()
    assert cmd in ci.splitlines()
