"""The experiment runner end to end on the shipped organism, at a tiny size."""

from __future__ import annotations

import html
import json
import shutil
import sys
from pathlib import Path

import pytest

from steering import experiment
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
    # the token view: every non-control run's generations, token by token
    page = (out / "tokens.html").read_text()
    for r in disk["hybrid"]["runs"]:
        if not r.get("control"):
            assert r["token_view"] and f"<h2>{html.escape(r['name'])} " in page
    temps = [g["temperature"] for g in disk["temperature"]["grid"]]
    assert temps == [1.0, 0.7, 0.5, 0.0]
    on = disk["temperature"]["best_chosen_on"]  # chosen on dev, then measured on test
    dev = {r["temperature"]: r["base"] for r in on["base_pass1"]}
    assert on["split"] == "dev" and on["problems"] > 0 and set(dev) == set(temps)
    assert disk["temperature"]["best_temperature"] == max(temps, key=lambda t: dev[t])
    assert {"bf16", "fp32"} <= set(disk["diff"]["sparsity"])
    assert disk["diff"]["overlap"], "two RL seeds give a seed overlap"
    assert len(disk["formats"]["logs"]) == 2
    for png in disk["plots"]:
        assert (out / png).stat().st_size > 1000


def test_passk_records_the_sampling_settings_it_drew_with(tiny_run):
    out, res, cfg = tiny_run
    disk = json.loads((out / "results.json").read_text())
    got = disk["passk"]["sampling"]
    assert got["n"] == 4 == disk["passk"]["n"]
    assert got["seed"] == cfg.experiment.seed
    assert got["temperature"] == cfg.sampling.temperature and got["top_p"] == cfg.sampling.top_p
    assert got["max_new_tokens"] > 0 and got["stop"] == []  # the organism ends at eos


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


def test_rerun_uses_the_cache_and_keeps_other_stages(tiny_run):
    out, res, cfg = tiny_run
    assert res["cache"]["passk"] == "computed" and res["cache"]["diff"] == "computed"
    cache = {s: out / "cache" / f"{s}.json" for s in ("passk", "diff")}
    before = {s: (p.stat().st_mtime_ns, p.read_bytes()) for s, p in cache.items()}
    again = run_experiment(cfg, stages=["passk", "diff"], progress=True)
    assert again["cache"] == {"passk": "hit", "diff": "hit"}
    assert {s: (p.stat().st_mtime_ns, p.read_bytes()) for s, p in cache.items()} == before
    assert again["passk"]["raw"]["base_correct"] == res["passk"]["raw"]["base_correct"]
    disk = json.loads((out / "results.json").read_text())
    assert "hybrid" in disk and "sweep" in disk  # a one-stage run keeps the rest
    assert disk["cache"] == {"passk": "hit", "diff": "hit"}


def test_the_sweep_is_cached_and_made_again_when_a_vector_changes(tiny_run):
    out, res, cfg = tiny_run
    assert res["cache"]["sweep"] == "computed"
    again = run_experiment(cfg, stages=["sweep"], progress=False)
    assert again["cache"] == {"extract": "hit", "sweep": "hit"}
    assert again["sweep"]["rows"] == res["sweep"]["rows"]
    assert (out / "sweep.png").exists()  # the plot comes from the cached rows too
    vec = Path(next(iter(res["sweep"]["vectors"].values())))
    good = vec.read_bytes()
    vec.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))  # a vector changed on disk
    third = run_experiment(cfg, stages=["sweep"], progress=False)
    assert third["cache"]["sweep"] == "computed"
    assert vec.read_bytes() == good
    assert third["sweep"]["rows"] == res["sweep"]["rows"]


def test_changed_settings_miss_the_cache(tiny_run):
    out, res, cfg = tiny_run
    changed = load_config(
        CONFIG,
        {
            **TINY,
            "experiment": {"output": str(out)},
            "sampling": {**TINY["sampling"], "top_p": 0.9},
        },
    )
    old_key = json.loads((out / "cache" / "passk.json").read_text())["key"]
    again = run_experiment(changed, stages=["passk"], progress=True)
    assert again["cache"] == {"passk": "computed"}
    assert json.loads((out / "cache" / "passk.json").read_text())["key"] != old_key


def test_another_dtype_misses_the_cache(tiny_run, tmp_path):
    out, res, cfg = tiny_run
    shutil.copytree(out, tmp_path / "run")
    bf16 = load_config(
        CONFIG,
        {**TINY, "experiment": {"output": str(tmp_path / "run")}, "models": {"dtype": "bfloat16"}},
    )
    again = run_experiment(bf16, stages=["passk"], progress=False)
    assert again["cache"] == {"passk": "computed"}  # the weights' fingerprint is the same


def test_a_one_stage_run_on_other_models_keeps_no_old_stage(tiny_run):
    out, res, cfg = tiny_run
    disk = out / "results.json"
    kept = disk.read_text()
    try:
        for other_models in (False, True):
            old = json.loads(kept)
            old["config"] = cfg.to_dict()  # the same study
            old["fingerprints"] = res["fingerprints"]
            old["hybrid"] = {"an earlier stage": True}
            if other_models:
                rl = old["fingerprints"]["rl"]
                old["fingerprints"] = {**old["fingerprints"], "rl": {**rl, "weights": "other"}}
            disk.write_text(json.dumps(old))
            run_experiment(cfg, stages=["passk"], progress=False)
            now = json.loads(disk.read_text())
            assert "passk" in now and ("hybrid" in now) is not other_models
    finally:
        disk.write_text(kept)


def test_cpu_runs_default_to_one_thread_and_record_it(tiny_run):
    out, _, _ = tiny_run
    disk = json.loads((out / "results.json").read_text())
    assert disk["settings"]["threads"] == 1 and disk["config"]["experiment"]["threads"] == 0


def test_threads_from_the_command_line_are_applied_and_recorded(tmp_path, monkeypatch):
    import torch

    from steering.cli import main

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(3)
        seen = {}
        real = experiment.Run.__post_init__

        def spy(self):  # the thread count in force when the run starts its work
            seen["threads"] = torch.get_num_threads()
            real(self)

        monkeypatch.setattr(experiment.Run, "__post_init__", spy)
        out = tmp_path / "run"
        assert main(["formats", str(CONFIG), "--out", str(out), "--threads", "1"]) == 0
        assert seen["threads"] == 1
        disk = json.loads((out / "results.json").read_text())
        assert disk["settings"]["threads"] == 1 and disk["config"]["experiment"]["threads"] == 1
        assert disk["formats"]["logs"] and disk["cache"] == {}
    finally:
        torch.set_num_threads(before)


def test_bars_are_off_in_a_log_file_and_on_in_a_terminal(monkeypatch, tmp_path):
    cfg = load_config(CONFIG, {**TINY, "experiment": {"output": str(tmp_path)}})
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    run = experiment.Run(cfg, progress=True)
    assert run.progress is False
    assert experiment.stage_bar(["passk"], run.progress).disable is True
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert experiment.Run(cfg, progress=True).progress is True
    assert experiment.Run(cfg, progress=False).progress is False  # --quiet wins
    bar = experiment.stage_bar(["passk"], True)
    try:
        assert bar.disable is False and bar.pos == 0 and bar.leave is True
    finally:
        bar.close()


def test_passk_refuses_an_rl_model_with_another_vocabulary(tmp_path, model_dir):
    from steering.config import ConfigError

    other = model_dir("llama", n_layers=2)  # the test tokenizer, not the organism's
    cfg = load_config(
        CONFIG,
        {
            **TINY,
            "experiment": {"output": str(tmp_path / "out")},
            "models": {"rl": str(other), "rl_other_seeds": []},
            "extract": {"n_traces": 24, "sites": ["1"]},
        },
    )
    with pytest.raises(ConfigError, match=r"\[models\] rl: the RL model's tokenizer differs"):
        run_experiment(cfg, stages=["passk"], progress=False)
    assert not (tmp_path / "out" / "cache" / "passk.json").exists()  # refused before sampling


def test_bars_stay_on_in_jupyter(monkeypatch):
    import tqdm.notebook

    class NotebookBar(tqdm.notebook.tqdm):  # what tqdm.auto gives inside a Jupyter kernel
        pass

    monkeypatch.setattr(experiment, "tqdm", NotebookBar)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert experiment.progress_enabled(True) is True
    assert experiment.progress_enabled(False) is False


def test_models_load_from_local_folders_only(tmp_path, monkeypatch):
    import socket

    from steering.config import ConfigError

    def no_network(*a, **k):
        raise AssertionError("tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    over = {**TINY, "experiment": {"output": str(tmp_path)}, "models": {"base": "Org/model"}}
    cfg = load_config(CONFIG, over, check_paths=False)  # a config checked without its paths
    with pytest.raises(ConfigError, match=r"\[models\] base: no checkpoint folder at 'Org/model'"):
        run_experiment(cfg, stages=["formats"], progress=False)


def test_blas_runs_with_the_experiments_threads(monkeypatch, tmp_path):
    """numpy's and scikit-learn's BLAS get the run's thread count (its probes' numbers
    changed with OMP_NUM_THREADS otherwise); the process's limits come back afterwards."""
    from threadpoolctl import threadpool_info

    seen = {}

    def record(cfg, wanted, progress, force, *, partial):
        seen["threads"] = {p["num_threads"] for p in threadpool_info()}
        return {}

    def blas() -> set[int]:
        return {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}

    before = blas()
    monkeypatch.setattr(experiment, "_run_stages", record)
    cfg = load_config(CONFIG, {**TINY, "experiment": {"output": str(tmp_path), "threads": 1}})
    run_experiment(cfg, progress=False)
    assert seen["threads"] == {1}
    assert blas() == before  # (torch's own thread count stays set: it is the process's)
