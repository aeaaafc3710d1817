"""The command line starts without torch: lazy imports, and one torch-free vocabulary."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "sklearn", "transformers")

PROBE = """
import json, runpy, sys
from pathlib import Path
out, config = Path(sys.argv[1]), sys.argv[2]
import steering.config, steering.cli, steering.vocab
steering.cli.build_parser()
sys.argv = ["rsteer", "--help"]
try:
    runpy.run_module("steering.cli", run_name="__main__")
except SystemExit as e:
    code = e.code
steering.config.load_config(config, check_paths=False)
out.write_text(json.dumps({"code": code, "heavy": sorted(
    m for m in sys.modules if m.split(".")[0] in %r)}))
"""


CONFIG = """
[models]
base = "models/base"
rl = "models/rl"
device = "cuda"

[task]
kind = "organism"
spec = "task.toml"
dev = "dev.jsonl"
test = "test.jsonl"

[extract]
sites = ["1", "blocks.2.hook_resid_pre"]
"""


def test_cli_help_and_config_do_not_import_torch_or_sklearn(tmp_path):
    out = tmp_path / "modules.json"
    cfg = tmp_path / "exp.toml"
    cfg.write_text(CONFIG)
    subprocess.run(
        [sys.executable, "-c", PROBE % (HEAVY,), str(out), str(cfg)],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    got = json.loads(out.read_text())
    assert got["code"] == 0
    assert got["heavy"] == []


def test_vocabulary_matches_the_modules_that_use_it():
    import probes
    from rlvr.tasks import TASK_KINDS
    from steering import vocab
    from steering.hybrid import decoder

    assert vocab.POOLINGS == probes.POOLINGS
    assert vocab.METHODS == probes.METHODS
    assert vocab.SITE_KINDS == probes.SITE_KINDS
    assert vocab.TASK_KINDS == TASK_KINDS
    assert decoder.MODES is vocab.MODES  # the hybrid uses the same words
    assert vocab.BACKENDS == probes.handles.BACKENDS


@pytest.mark.parametrize(
    "spec",
    [
        "0",
        "3",
        "12.resid_pre",
        "4.resid_post",
        "blocks.2.hook_resid_pre",
        "blocks.7.hook_resid_post",
    ]
    + ["x", "3.resid_mid", "blocks.2.hook_attn", "-1", "1.2", "", "blocks.x.hook_resid_pre"],
)
def test_config_reads_sites_as_probes_does(spec):
    from probes import Site
    from steering.config_checks import parse_site

    try:
        want = Site.parse(spec)
    except (ValueError, TypeError):
        with pytest.raises(ValueError, match="cannot read a site"):
            parse_site(spec)
    else:
        assert parse_site(spec) == (want.layer, want.kind)


def test_package_names_resolve_on_first_use():
    import steering

    assert steering.Steer.__name__ == "Steer"
    assert callable(steering.recovery) and steering.Recovery.__name__ == "Recovery"
    assert set(steering.__all__) <= set(dir(steering))
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        steering.Nope  # noqa: B018
