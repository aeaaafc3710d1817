"""The experiment runner end to end on the shipped organism, at a tiny size."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from steering.config import load_config
from steering.experiment import run_experiment
from steering.report import summary_table

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "data" / "experiments" / "organism.toml"

TINY = {
    "task": {"n_dev": 3, "n_test": 3},
    "sampling": {"n": 4, "ks": [1, 2, 4], "batch_size": 64},
    "extract": {"n_traces": 24},
    "sweep": {"folds": 2, "n_boot": 10, "n_random": 3},
    "hybrid": {
        "coefs": [1.0],
        "n_sites": 1,
        "n": 2,
        "n_problems": 3,
        "thresholds": [0.5],
        "n_boot": 50,
    },
}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    cfg = load_config(CONFIG, {**TINY, "experiment": {"output": str(out)}})
    res = run_experiment(cfg, progress=False)
    return out, res, cfg


def test_every_stage_lands_in_results(tiny_run):
    out, res, _ = tiny_run
    disk = json.loads((out / "results.json").read_text())
    for key in (
        "passk",
        "extract",
        "sweep",
        "select",
        "hybrid",
        "temperature",
        "budget",
        "diff",
        "formats",
        "config",
        "versions",
        "fingerprints",
    ):
        assert key in disk, key
    pk = disk["passk"]
    assert pk["ks"] == [1, 2, 4] and pk["per_class"]["all"]["n_problems"] == 6
    assert set(pk["per_class"]) == {"all", "main", "long"}
    names = [r["name"] for r in disk["hybrid"]["runs"]]
    assert "rl/steer" in names and "rl/handoff" in names
    assert "rl/steer control: rerank" in names
    assert {"rl/handoff control: random_timing", "rl/handoff control: random_any_position"} <= set(
        names
    )
    # the reference schedules and both exclusive settings of the positive control
    assert {"ground_truth/handoff", "ground_truth/handoff (non-exclusive)"} <= set(names)
    assert {"every_boundary/handoff", "first_decision/handoff", "base_probe/handoff"} <= set(names)
    gt = next(r for r in disk["hybrid"]["runs"] if r["name"] == "ground_truth/handoff")
    assert gt["quality"]["check"]["precision"] in (None, 1.0) and gt["emit"] == "label"
    assert disk["hybrid"]["comparisons"], "router vs random timing, ground truth vs every boundary"
    temps = [g["temperature"] for g in disk["temperature"]["grid"]]
    assert temps == [1.0, 0.7, 0.5, 0.0]
    assert disk["temperature"]["best_temperature"] in temps
    assert {"bf16", "fp32"} <= set(disk["diff"]["sparsity"])
    assert disk["diff"]["overlap"], "two RL seeds give a seed overlap"
    assert len(disk["formats"]["logs"]) == 2
    for png in disk["plots"]:
        assert (out / png).stat().st_size > 1000


def test_report_numbers_come_from_results(tiny_run):
    out, res, _ = tiny_run
    report = (out / "report.md").read_text()
    assert "## Verdicts" in report and "## Summary" in report
    b1 = res["passk"]["per_class"]["all"]["base"]["mean"][0]
    r1 = res["passk"]["per_class"]["all"]["rl"]["mean"][0]
    assert f"pass@1 base {100 * b1:.1f}% vs RL {100 * r1:.1f}%" in report
    assert summary_table(res) in report
    for r in res["hybrid"]["runs"]:
        if r.get("recovery") is not None:
            assert f"{100 * r['recovery']:.1f}%" in report


def test_rerun_uses_the_cache_and_keeps_other_stages(tiny_run, capsys):
    out, res, cfg = tiny_run
    again = run_experiment(cfg, stages=["passk", "diff"], progress=True)
    printed = capsys.readouterr().out
    assert "[passk] cached" in printed and "[diff] cached" in printed
    assert again["passk"]["raw"]["base_correct"] == res["passk"]["raw"]["base_correct"]
    disk = json.loads((out / "results.json").read_text())
    assert "hybrid" in disk and "sweep" in disk  # a one-stage run keeps the rest


def test_changed_settings_miss_the_cache(tiny_run, capsys):
    out, res, cfg = tiny_run
    changed = load_config(
        CONFIG,
        {
            **TINY,
            "experiment": {"output": str(out)},
            "sampling": {**TINY["sampling"], "top_p": 0.9},
        },
    )
    run_experiment(changed, stages=["passk"], progress=True)
    assert "[passk] cached" not in capsys.readouterr().out
