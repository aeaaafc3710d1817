"""SamplingParams: one validated record of the sampling settings, taken by every sampler."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import char_tokenizer, tiny_model

import probes
from rlvr import SamplingParams, sample
from rlvr.generation.sampling_vllm import sample_vllm
from steering.hybrid import HybridDecoder, ModelRouter

ROOT = Path(__file__).resolve().parent.parent
PROMPTS = ["ab 12=c?d.", "xy 3", "hello world, 7+8=", "q"]


@pytest.fixture(scope="module")
def handle():
    return probes.wrap(tiny_model("llama"), char_tokenizer())


@pytest.mark.parametrize(
    "kw, message",
    [
        (dict(temperature=-1), r"temperature must be finite and >= 0 \(0 = greedy\)"),
        (dict(temperature=math.nan), "temperature must be finite"),
        (dict(temperature=math.inf), "temperature must be finite"),
        (dict(temperature="hot"), "temperature must be a number"),
        (dict(temperature=True), "temperature must be a number"),
        (dict(top_p=0), r"top_p must be in \(0, 1\]"),
        (dict(top_p=1.5), r"top_p must be in \(0, 1\]"),
        (dict(top_p=math.nan), r"top_p must be in \(0, 1\]"),
        (dict(n=0), "n must be a positive int, got 0"),
        (dict(n=2.0), "n must be a positive int, got 2.0"),
        (dict(n=True), "n must be a positive int, got True"),
        (dict(max_new_tokens=0), "max_new_tokens must be a positive int"),
        (dict(max_new_tokens=math.nan), "max_new_tokens must be a positive int"),
        (dict(seed=1.5), "seed must be an int"),
        (dict(stop=[""]), "stop strings must be non-empty strings"),
        (dict(stop=[".", 3]), "stop strings must be non-empty strings"),
        (dict(stop=None), "stop must be a string or a list of strings"),
    ],
)
def test_bad_settings_are_refused_when_the_record_is_made(kw, message):
    with pytest.raises(ValueError, match=message):
        SamplingParams(**kw)


def test_settings_are_normalised_frozen_and_revalidated_on_replace():
    p = SamplingParams(n=3, temperature=0, stop=".", seed=-2)
    assert p.stop == (".",) and p.temperature == 0.0 and isinstance(p.temperature, float)
    assert SamplingParams(stop=["a", "b"]).stop == ("a", "b")
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.n = 4
    assert p.replace(temperature=0.5).temperature == 0.5 and p.temperature == 0.0
    with pytest.raises(ValueError, match="top_p"):
        p.replace(top_p=2.0)
    d = p.to_dict()
    assert d == dict(n=3, temperature=0.0, top_p=1.0, max_new_tokens=64, stop=["."], seed=-2)
    assert json.loads(json.dumps(d)) == d


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_sample_with_params_equals_sample_with_keywords(handle, temperature):
    kw = dict(n=3, temperature=temperature, top_p=0.9, max_new_tokens=10, stop=["e"], seed=7)
    loose = sample(handle, PROMPTS, progress=False, **kw)
    packed = sample(handle, PROMPTS, params=SamplingParams(**kw), progress=False)
    assert packed.token_ids == loose.token_ids
    assert packed.logprobs == loose.logprobs
    assert packed.texts == loose.texts
    assert packed.params == loose.params == SamplingParams(**kw).to_dict()
    # and the settings matter: another seed draws other tokens at temperature 1
    if temperature:
        other = sample(handle, PROMPTS, params=SamplingParams(**{**kw, "seed": 8}), progress=False)
        assert other.token_ids != loose.token_ids


def test_sample_refuses_params_and_keywords_together(handle):
    p = SamplingParams(n=2)
    for extra in (dict(temperature=0.5), dict(n=2), dict(stop=".", seed=1)):
        with pytest.raises(TypeError, match="both as params= and as keywords"):
            sample(handle, PROMPTS, params=p, progress=False, **extra)
    with pytest.raises(TypeError, match="params must be a SamplingParams"):
        sample(handle, PROMPTS, params=dict(n=2), progress=False)


def test_the_hybrid_takes_params_and_keeps_its_greedy_default(handle):
    other = probes.wrap(tiny_model("llama", seed=1), char_tokenizer())
    dec = HybridDecoder(handle, ModelRouter(other, lambda prefix, nxt: "v"), mode="handoff")
    loose = dec.generate(PROMPTS, n=2, max_new_tokens=8, seed=3, progress=False)
    packed = dec.generate(
        PROMPTS, params=SamplingParams(n=2, temperature=0, max_new_tokens=8, seed=3), progress=False
    )
    assert packed.samples.token_ids == loose.samples.token_ids
    assert loose.params["temperature"] == 0.0  # the hybrid's default is greedy
    with pytest.raises(TypeError, match="both as params= and as keywords"):
        dec.generate(PROMPTS, params=SamplingParams(), top_p=0.5, progress=False)


def test_the_vllm_sampler_validates_before_importing_vllm():
    # neither call reaches the vllm import, so both hold without vllm installed
    with pytest.raises(ValueError, match="top_p must be in"):
        sample_vllm("m", ["p"], top_p=0)
    with pytest.raises(TypeError, match="both as params= and as keywords"):
        sample_vllm("m", ["p"], params=SamplingParams(), n=2)


def test_the_record_imports_no_torch():
    probe = (
        "import sys; from rlvr.generation.sampling_params import SamplingParams; SamplingParams(n=2); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, check=True, capture_output=True, text=True
    )
    assert out.stdout.strip().splitlines()[-1] == "False"
