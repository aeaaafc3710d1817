"""Start-up time of the ``rsteer`` command line, against ``python -c pass`` in the same run.

    python bench/cli_startup.py [--repeats 7] [--compare OTHER_CHECKOUT]

Each command runs in a fresh interpreter (``python -m steering.cli ...`` from the checkout's
root, one torch thread); the commands alternate round-robin so load drift hits all of them,
and the median wall time is reported, with the time above the bare interpreter and the ratio
to it. ``--compare`` adds the same commands run from another checkout (e.g. the main branch)
to the same rounds. The target: ``rsteer --help`` and ``rsteer validate`` within 1.5 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = "data/experiments/organism.toml"
TARGET_S = 1.5


def commands(repo: Path, tag: str) -> dict[str, tuple[list[str], Path]]:
    py = sys.executable
    return {
        f"{tag}rsteer --help": ([py, "-m", "steering.cli", "--help"], repo),
        f"{tag}rsteer validate": ([py, "-m", "steering.cli", "validate", CONFIG], repo),
    }


def wall(cmd: list[str], cwd: Path) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--compare", type=Path, help="another checkout to time in the same rounds")
    args = ap.parse_args()
    cmds = {"python -c pass": ([sys.executable, "-c", "pass"], ROOT)}
    if args.compare:
        cmds |= commands(args.compare.resolve(), "[compare] ")
    cmds |= commands(ROOT, "")
    for cmd, cwd in cmds.values():  # warm-up: file cache, byte-compiled modules
        wall(cmd, cwd)
    times: dict[str, list[float]] = {k: [] for k in cmds}
    for _ in range(args.repeats):
        for name, (cmd, cwd) in cmds.items():
            times[name].append(wall(cmd, cwd))
    med = {k: statistics.median(v) for k, v in times.items()}
    base = med["python -c pass"]
    print(f"median of {args.repeats} round-robin runs, 1 thread ({os.cpu_count()} CPUs)")
    print(f"{'command':<32} {'median s':>9} {'above python':>13} {'x python':>9}")
    for name, t in med.items():
        print(f"{name:<32} {t:>9.3f} {t - base:>13.3f} {t / base:>9.1f}")
    for name in commands(ROOT, ""):
        verdict = "meets" if med[name] <= TARGET_S else "misses"
        print(f"{name}: {med[name]:.2f} s {verdict} the {TARGET_S} s target")


if __name__ == "__main__":
    main()
