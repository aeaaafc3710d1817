"""The GPU check script runs end to end on the CPU at a tiny size."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"


def test_gpu_check_runs_tiny_on_cpu(capsys, monkeypatch):
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "gpu_check.py",
            "--size",
            "tiny",
            "--device",
            "cpu",
            "--batch",
            "2",
            "--seq",
            "32",
            "--new",
            "4",
            "--repeats",
            "1",
        ],
    )
    runpy.run_path(str(BENCH / "gpu_check.py"), run_name="__main__")
    out = capsys.readouterr().out
    for line in (
        "extraction (2 sites) / plain forward",
        "steered / unsteered sampling",
        "hybrid / base-only sampling",
        "static / dynamic KV cache, sampling",
        "static / dynamic KV cache, hybrid",
    ):
        assert line in out
