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
    dev.write_text(
        '{"start": "a", "hops": 9, "cls": "main"}\n{"start": "b", "hops": 27, "cls": "long"}\n'
    )
    spec = tmp_path / "task.json"
    spec.write_text("{}")
    base = model_dir("llama") if model_dir else tmp_path
    experiment = "" if "[experiment]" in body else '[experiment]\nname = "t"\n'
    text = f"""
{experiment}
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
    from rlvr.generation.sampling_vllm import sample_vllm

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
    claims = default_dir().parent / "organism-claims"
    for shipped in (default_dir(), claims):
        before = sorted(p.stat().st_mtime_ns for p in shipped.rglob("*.safetensors"))
        assert main(["organism", "train", "--out", str(shipped)]) == 2
        after = sorted(p.stat().st_mtime_ns for p in shipped.rglob("*.safetensors"))
        assert before == after  # refused before any work: nothing rewritten
    assert main(["organism", "train", "--recipe", str(tmp_path / "none.toml")]) == 2


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


# -- values that parse but are wrong: each caught before any model loads, with file:line ----

BAD_VALUES = [
    ("\n[extract]\nn_traces = -5\n", r"\[extract\] n_traces: n_traces = -5"),
    ("\n[extract]\nn_traces = 0\n", r"\[extract\] n_traces: n_traces = 0"),
    ("\n[extract]\nsites = []\n", r"\[extract\] sites: give at least one site"),
    ('\n[extract]\nsites = ["all", "1"]\n', r"\[extract\] sites: \"all\" already means"),
    (
        '\n[extract]\nsites = ["1", "blocks.1.hook_resid_post"]\n',
        r"\[extract\] sites: layer 1 resid_post is listed twice",
    ),
    ('\n[extract]\nsites = ["1.resid_mid"]\n', r"\[extract\] sites: cannot read a site"),
    ('\n[extract]\nlabels = ["chek"]\n', r"\[extract\] labels: unknown label 'chek'"),
    ('\n[extract]\nlabels = ["check", "check"]\n', r"\[extract\] labels: 'check' is listed"),
    ("\n[extract]\nlabels = [3]\n", r"\[extract\] labels: every entry must be str"),
    ('\n[extract]\nbaseline = "steps"\n', r"\[extract\] baseline: unknown label 'steps'"),
    ("\n[experiment]\nseed = -3\n", r"\[experiment\] seed: seed = -3 is out of range"),
    ("\n[experiment]\nseed = 4294967296\n", r"\[experiment\] seed: .* out of range"),
    ("\n[experiment]\nthreads = -1\n", r"\[experiment\] threads: threads = -1"),
    ("\n[experiment]\nthreads = 100000\n", r"\[experiment\] threads: 100000 threads"),
    ('\n[experiment]\nname = " "\n', r"\[experiment\] name: give a name"),
    ('\n[experiment]\noutput = ""\n', r"\[experiment\] output: give an output folder"),
    ("\n[sampling]\ntemperature = 0.0\n", r"\[sampling\] temperature: temperature = 0 is greedy"),
    ("\n[sampling]\ntemperature = nan\n", r"\[sampling\] temperature: must be a finite number"),
    ("\n[sampling]\ntemperature = -0.5\n", r"\[sampling\] temperature: need temperature >= 0"),
    ("\n[sampling]\ntop_p = 0\n", r"\[sampling\] top_p: need 0 < top_p <= 1"),
    ("\n[sampling]\nmax_new_tokens = 100000\n", r"\[sampling\] max_new_tokens: .* 256 positions"),
    ("\n[sampling]\nmax_new_tokens = -1\n", r"\[sampling\] max_new_tokens: must be >= 0"),
    ("\n[sampling]\nbatch_size = 0\n", r"\[sampling\] batch_size: must be >= 1"),
    ('\n[sampling]\nbackend = "vllm"\n', r"\[sampling\] backend: vllm samples on a GPU"),
    ('\nclasses = ["main", "main"]\n', r"\[task\] classes: 'main' is listed twice"),
    ('\nclasses = ["short"]\n', r"\[task\] classes: unknown class 'short'"),
    ("\n[sweep]\nn_boot = 0\n", r"\[sweep\] n_boot: need n_boot >= 1"),
    ("\n[sweep]\nn_random = 0\n", r"\[sweep\] n_random: need n_random >= 1"),
    ("\n[extract]\nn_traces = 3\n[sweep]\nfolds = 4\n", r"\[sweep\] folds: 4 folds need"),
    ("\n[diff]\ntol = -1e-5\n", r"\[diff\] tol: tol = -1e-05"),
    ('\n[diff]\ndtypes = ["bf16", "bf16"]\n', r"\[diff\] dtypes: 'bf16' is listed twice"),
    ('\n[formats]\nlogs = ["no-such-log.jsonl"]\n', r"\[formats\] logs: no log file at"),
    ("\n[hybrid]\ncoefs = [1.0, inf]\n", r"\[hybrid\] coefs: every entry must be a finite"),
]


@pytest.mark.parametrize("body, message", BAD_VALUES)
def test_wrong_values_name_key_and_line(tmp_path, model_dir, body, message):
    with pytest.raises(ConfigError, match=r"exp.toml:\d+: " + message):
        load_config(_write(tmp_path, body, model_dir))


def _set(p: Path, section_line: str, old: str, new: str) -> Path:
    """Replace ``old`` by ``new`` in the line that starts with ``section_line``."""
    lines = p.read_text().splitlines()
    i = next(i for i, t in enumerate(lines) if t.startswith(section_line))
    lines[i] = lines[i].replace(old, new)
    p.write_text("\n".join(lines) + "\n")
    return p


def _partial_checkpoint(src: Path, dst: Path, drop: tuple[str, ...]) -> Path:
    dst.mkdir()
    for f in src.iterdir():
        if not any(f.match(d) for d in drop):
            (dst / f.name).write_bytes(f.read_bytes())
    return dst


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda src, d: _partial_checkpoint(src, d, ("config.json",)), r"has no config.json"),
        (
            lambda src, d: _partial_checkpoint(src, d, ("*.safetensors", "*.bin")),
            r"has config.json but no weights",
        ),
        (
            lambda src, d: _partial_checkpoint(src, d, ("tokenizer*", "special_tokens_map.json")),
            r"has no tokenizer files",
        ),
        (lambda src, d: (d.write_text("x"), d)[1], r"is a file; give the checkpoint folder"),
    ],
    ids=["no-config", "no-weights", "no-tokenizer", "a-file"],
)
def test_incomplete_checkpoint_folders(tmp_path, model_dir, make, message):
    p = _write(tmp_path, "", model_dir)
    bad = make(Path(model_dir("llama")), tmp_path / "ckpt")
    _set(p, "rl =", str(model_dir("llama")), str(bad))
    with pytest.raises(ConfigError, match=r"exp.toml:\d+: \[models\] rl: .*" + message):
        load_config(p)


def test_hub_id_is_refused_without_touching_the_network(tmp_path, model_dir, monkeypatch):
    import socket

    def no_network(*a, **k):
        raise AssertionError("validation tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    p = _write(tmp_path, "", model_dir)
    _set(p, "base =", str(model_dir("llama")), "Qwen/Qwen2.5-0.5B")
    with pytest.raises(
        ConfigError,
        match=r"exp.toml:\d+: \[models\] base: no checkpoint folder .*never downloads.*hub id",
    ):
        load_config(p)


def test_device_this_machine_lacks(tmp_path, model_dir):
    import torch

    device = f"cuda:{torch.cuda.device_count()}" if torch.cuda.is_available() else "cuda:0"
    p = _write(tmp_path, "", model_dir)
    _set(p, "rl =", 'rl = "', f'device = "{device}"\nrl = "')
    with pytest.raises(
        ConfigError, match=r"exp.toml:\d+: \[models\] device: .*(not available|has)"
    ):
        load_config(p)
    _set(p, "device =", device, "gpu")
    with pytest.raises(ConfigError, match=r"\[models\] device: unknown device 'gpu'"):
        load_config(p)


def test_task_file_problems(tmp_path, model_dir):
    p = _write(tmp_path, '\nclasses = ["main", "long"]\n', model_dir)
    load_config(p)  # both classes present in dev (= test)
    (tmp_path / "dev.jsonl").write_text('{"start": "a", "hops": 9, "cls": "main"}\n')
    with pytest.raises(ConfigError, match=r"\[task\] dev: the dev split has no problems of class"):
        load_config(p)
    (tmp_path / "dev.jsonl").write_text("{not json\n")
    with pytest.raises(ConfigError, match=r"\[task\] dev: cannot read its problems"):
        load_config(p)
    (tmp_path / "dev.jsonl").unlink()
    (tmp_path / "dev.jsonl").mkdir()
    with pytest.raises(ConfigError, match=r"\[task\] dev: .* is a folder"):
        load_config(p)


def test_spec_only_for_the_organism(tmp_path, model_dir):
    p = _write(tmp_path, "", model_dir)
    _set(p, "kind =", "organism", "gsm8k")
    with pytest.raises(ConfigError, match=r"exp.toml:\d+: \[task\] spec: only the organism"):
        load_config(p)


def test_output_that_is_a_file(tmp_path, model_dir):
    (tmp_path / "taken").write_text("x")
    p = _write(tmp_path, f'\n[experiment]\noutput = "{tmp_path / "taken"}"\n', model_dir)
    with pytest.raises(ConfigError, match=r"\[experiment\] output: .* is a file"):
        load_config(p)


@pytest.mark.parametrize(
    "body",
    [
        "\n[extract]\nn_traces = -5\n",
        "\n[experiment]\nseed = -3\n",
        '\n[extract]\nlabels = ["x"]\n',
    ],
)
def test_cli_refuses_before_loading_or_writing(tmp_path, model_dir, body, monkeypatch):
    import probes.handles

    def no_load(*a, **k):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(probes.handles, "load_hf", no_load)
    p = _write(tmp_path, body, model_dir)
    out = tmp_path / "out"
    assert main(["validate", str(p)]) == 2
    assert main(["run", str(p), "--out", str(out)]) == 2
    assert not out.exists()  # nothing written


def _help_texts(parser) -> dict[str, str]:
    """Every description and help string of a parser and its sub-commands, by name."""
    import argparse

    out = {parser.prog: parser.description or ""}
    for action in parser._actions:
        if action.help and action.help != argparse.SUPPRESS:
            out[f"{parser.prog} {'/'.join(action.option_strings) or action.dest}"] = action.help
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                out[f"{parser.prog} {choice.dest} (help)"] = choice.help or ""
            for sub in action.choices.values():
                out |= _help_texts(sub)
    return out


def test_help_keeps_acronyms_in_capitals():
    import re

    texts = _help_texts(build_parser())
    assert len(texts) > 40
    for name, text in texts.items():
        assert not re.search(r"\b(?!RL\b|AUROC\b|KV\b)(?i:rl|auroc|kv)\b", text), (name, text)
    assert "AUROC" in texts["rsteer sweep"] and "KV" in texts["rsteer hybrid"]
    assert "RL" in texts["rsteer hybrid"] and "RL" in texts["rsteer passk"]
    for stage, text in STAGE_HELP.items():
        assert texts[f"rsteer {stage}"].startswith(text[0].upper() + text[1:])


def test_threads_flag_takes_a_positive_count():
    args = build_parser().parse_args(["run", "x.toml", "--threads", "2"])
    assert args.threads == 2
    for bad in ("0", "-1", "two"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["run", "x.toml", "--threads", bad])


def test_cli_keeps_the_hub_offline(tmp_path, model_dir, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    assert main(["validate", str(_write(tmp_path, "", model_dir))]) == 0
    import os

    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"
