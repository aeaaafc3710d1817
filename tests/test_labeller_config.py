"""The labeller of real-model experiments: the [task] labeller key, the run, the report."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlvr.text.labelling import RuleLabeller, TrainedLabeller, labeller_report
from steering.config import ConfigError, load_config
from steering.experiment import Run
from steering.report import _labeller_lines

DEV = Path(__file__).resolve().parents[1] / "data" / "reasoning" / "dev_traces.json"


def _config(tmp_path: Path, model_dir, kind: str, labeller: str | None) -> Path:
    problems = tmp_path / f"{kind}.jsonl"
    if kind == "math500":
        problems.write_text('{"problem": "1 + 1?", "answer": "2"}\n')
    else:
        problems.write_text('{"question": "1 + 1?", "answer": "#### 2"}\n')
    spec = tmp_path / "task.json"
    spec.write_text("{}")
    line = "" if labeller is None else f'labeller = "{labeller}"'
    spec_line = f'spec = "{spec}"' if kind == "organism" else ""
    text = f"""
[experiment]
name = "t"
output = "{tmp_path / "run"}"

[models]
base = "{model_dir("llama")}"
rl = "{model_dir("llama")}"

[task]
kind = "{kind}"
{spec_line}
dev = "{problems}"
test = "{problems}"
{line}
"""
    path = tmp_path / "exp.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def fitted_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("lab") / "labeller.joblib"
    TrainedLabeller.fit(DEV, split="heldout", folds=3, n_boot=20, verbose=False).save(path)
    return path


def test_default_labeller_is_rule_and_the_report_names_it(tmp_path, model_dir) -> None:
    cfg = load_config(_config(tmp_path, model_dir, "gsm8k", None))
    assert cfg.task.labeller == "rule"
    run = Run(cfg, progress=False)
    assert isinstance(run.task.labeller, RuleLabeller)
    info = labeller_report(run.task.labeller)
    assert info["name"] == "rule" and info["agreement"]["n_sentences"] >= 250
    (line, _) = _labeller_lines({"labeller": info})
    assert "**rule** labeller" in line
    assert f"accuracy {info['agreement']['accuracy']:.2f}" in line
    assert _labeller_lines({}) == []


def test_fitted_labeller_from_config_reports_its_cross_validation(
    tmp_path, model_dir, fitted_path
) -> None:
    run = Run(
        load_config(_config(tmp_path, model_dir, "math500", str(fitted_path))), progress=False
    )
    assert isinstance(run.task.labeller, TrainedLabeller)
    info = labeller_report(run.task.labeller)
    assert info["name"].startswith("trained") and info["measured_on"] == "cross-validation by trace"
    assert info["agreement"] == run.task.labeller.cv


def test_llm_checkpoint_is_accepted_but_not_measured(tmp_path, model_dir) -> None:
    cfg = load_config(_config(tmp_path, model_dir, "gsm8k", str(model_dir("llama"))))
    info = labeller_report(Run(cfg, progress=False).task.labeller)
    assert info["name"].startswith("llm") and info["agreement"] is None
    assert "agreement not measured" in _labeller_lines({"labeller": info})[0]


@pytest.mark.parametrize(
    ("kind", "labeller", "message"),
    [
        ("gsm8k", "rules", r"\[task\] labeller.*neither 'rule'"),
        ("gsm8k", "missing.joblib", r"\[task\] labeller.*no fitted labeller"),
        ("organism", "rule2", r"\[task\] labeller.*organism's spans are exact"),
    ],
)
def test_bad_labeller_values_fail_before_loading(tmp_path, model_dir, kind, labeller, message):
    with pytest.raises(ConfigError, match=message):
        load_config(_config(tmp_path, model_dir, kind, labeller))
