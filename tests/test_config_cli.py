"""Experiment configs fail early with key and line; the CLI documents every command."""

from __future__ import annotations

import builtins
from pathlib import Path

import pytest

from steering.cli import STAGE_HELP, build_parser, main
from steering.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parent.parent


def _write(tmp_path, body: str, model_dir=None) -> Path:
    dev = tmp_path / "dev.jsonl"
    dev.write_text('{"start": "a", "hops": 9, "cls": "main"}\n{"start": "b", "hops": 27, "cls": "long"}\n')
    spec = tmp_path / "task.json"
    spec.write_text("{}")
    base = model_dir("llama") if model_dir else tmp_path
    text = f"""
[experiment]
name = "t"

[models]
base = "{base}"
rl = "{base}"

[task]
kind = "organism"
spec = "{spec}"
dev = "{dev}"
test = "{dev}"
{body}
"""
    p = tmp_path / "exp.toml"
    p.write_text(text)
    return p


def test_valid_config_loads(tmp_path, model_dir):
    cfg = load_config(_write(tmp_path, "", model_dir))
    assert cfg.sampling.n == 64 and cfg.extract.pooling == "decision"


@pytest.mark.parametrize(
    "body, message",
    [
        (
            "\n[sampling]\nn = 8\nks = [1, 16]\n",
            r"exp.toml:\d+: \[sampling\] ks: k=16 is larger than n=8",
        ),
        ("\n[sampling]\ntemprature = 0.6\n", r"exp.toml:\d+: \[sampling\] temprature: unknown key"),
        ("\n[sampler]\nn = 2\n", r"\[sampler\]: unknown section"),
        (
            '\n[extract]\nsites = ["7"]\n',
            r"\[extract\] sites: site '7' is out of range: the base model has 3 layers",
        ),
        ('\n[extract]\npooling = "max"\n', r"\[extract\] pooling: unknown pooling 'max'"),
        ('\n[hybrid]\nrouters = ["oracle"]\n', r"\[hybrid\] routers: unknown 'oracle'"),
        ('\n[sampling]\nn = "many"\n', r"\[sampling\] n: expected int, got str"),
    ],
)
def test_config_errors_name_key_and_line(tmp_path, model_dir, body, message):
    with pytest.raises(ConfigError, match=message):
        load_config(_write(tmp_path, body, model_dir))


def test_line_number_is_the_offending_line(tmp_path, model_dir):
    p = _write(tmp_path, "\n[sampling]\nn = 8\nks = [1, 16]\n", model_dir)
    line = next(i for i, t in enumerate(p.read_text().splitlines(), 1) if t.startswith("ks ="))
    with pytest.raises(ConfigError, match=rf"exp.toml:{line}: "):
        load_config(p)


def test_missing_model_path(tmp_path):
    p = _write(tmp_path, "")
    p.write_text(p.read_text().replace(f'base = "{tmp_path}"', 'base = "no/such/dir/x"'))
    with pytest.raises(ConfigError, match=r"\[models\] base: no checkpoint at 'no/such/dir/x'"):
        load_config(p)


def test_cli_reports_config_errors_before_loading(tmp_path, model_dir, capsys):
    p = _write(tmp_path, "\n[sampling]\nn = 4\nks = [8]\n", model_dir)
    assert main(["run", str(p)]) == 2
    assert "k=8 is larger than n=4" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["qwen_math_vs_r1_distill", "open_reasoner_zero"])
def test_example_gpu_configs_validate_without_weights(name):
    cfg = load_config(ROOT / "data" / "experiments" / f"{name}.toml", check_paths=False)
    assert cfg.sampling.n >= max(cfg.sampling.ks)
    assert cfg.task.kind in ("gsm8k", "math500")


@pytest.mark.parametrize("cmd", ["run", "validate", "diff-checkpoints", "organism", *STAGE_HELP])
def test_every_subcommand_has_help(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args([cmd, "--help"])
    assert e.value.code == 0
    assert len(capsys.readouterr().out) > 200


def test_vllm_backend_is_import_guarded(monkeypatch):
    real = builtins.__import__

    def no_vllm(name, *a, **k):
        if name == "vllm" or name.startswith("vllm."):
            raise ImportError("No module named 'vllm'")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_vllm)
    from rlvr.sampling_vllm import sample_vllm

    with pytest.raises(ImportError, match=r"pip install 'rsteer\[vllm\]'"):
        sample_vllm("m", ["p"], n=2)


def test_cli_retrains_a_miniature_organism(tmp_path, capsys):
    from test_organism import MINI_RECIPE

    from rlvr.organism import default_dir

    recipe = tmp_path / "recipe.toml"
    recipe.write_text(MINI_RECIPE)
    out = tmp_path / "organism"
    assert main(["organism", "train", "--recipe", str(recipe), "--out", str(out)]) == 0
    for name in ("base", "rl-seed0", "rl-seed1"):
        assert (out / name / "model.safetensors").exists()
    assert (out / "README.md").exists() and (out / "results.json").exists()
    assert main(["organism", "train", "--out", str(default_dir())]) == 2
    assert "refusing to overwrite the shipped organism" in capsys.readouterr().err


@pytest.mark.parametrize(
    "body, message",
    [
        ("\n[sampling]\nks = [2, 4]\n", r"increasing k values starting at 1"),
        ('\n[sampling]\nks = [1, "2"]\n', r"every entry must be int"),
        ("\n[sampling]\nn = 2.5\n", r"expected an integer"),
        ("\n[hybrid]\ncoefs = []\n", r"\[hybrid\] coefs: give at least one"),
        ("\n[sweep]\nfolds = 1\n", r"folds >= 2"),
        ("\n[diff]\ndtypes = []\n", r"give at least one"),
    ],
)
def test_more_config_errors(tmp_path, model_dir, body, message):
    with pytest.raises(ConfigError, match=message):
        load_config(_write(tmp_path, body, model_dir))


def test_bad_model_dtype_and_class(tmp_path, model_dir):
    p = _write(tmp_path, "", model_dir)
    p.write_text(p.read_text().replace('rl = "', 'dtype = "bf16"\nrl = "'))
    with pytest.raises(ConfigError, match=r"\[models\] dtype: unknown dtype 'bf16'"):
        load_config(p)
