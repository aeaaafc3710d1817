"""The forward functions live in rlvr.forward: the handles and the loop both build on them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch

import probes.handles
import rlvr.forward as fwd
import rlvr.sampling

ROOT = Path(__file__).resolve().parent.parent


def test_handles_and_the_loop_use_the_forward_module():
    for name in ("forward_arg_names", "new_cache", "position_ids_from_mask"):
        assert getattr(probes.handles, name) is getattr(fwd, name)
        # still importable from the loop, where they were public before
        assert getattr(rlvr.sampling, name) is getattr(fwd, name)


def test_the_probes_package_does_not_load_the_sampling_loop():
    probe = (
        "import json, sys, probes; probes.wrap; "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('rlvr'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, check=True, capture_output=True, text=True
    )
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert "rlvr.forward" in loaded
    assert "rlvr.sampling" not in loaded


def test_position_ids_skip_left_padding():
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    got = fwd.position_ids_from_mask(mask)
    assert got.tolist() == [[0, 0, 0, 1, 2], [0, 1, 2, 3, 4]]
