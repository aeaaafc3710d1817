"""The benchmarks' forward timer counts every forward and leaves the handles as they were."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import char_tokenizer, tiny_model

import probes
from rlvr.generation.sampling import sample

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from _common import forward_seconds  # noqa: E402


def test_forward_seconds_counts_every_forward_and_restores_the_handles():
    base = probes.wrap(tiny_model(seed=0), char_tokenizer())
    other = probes.wrap(tiny_model(seed=1), char_tokenizer())
    kw = dict(n=2, temperature=1.0, max_new_tokens=5, seed=3, progress=False, eos_token_id=[])
    plain = sample(base, ["ab", "c"], **kw)
    steps = []
    with forward_seconds(base, other) as fwd:
        timed = sample(base, ["ab", "c"], callback=lambda t, ctx: steps.append(t), **kw)
        other.run(*_one_token(other))
    assert timed.token_ids == plain.token_ids  # the timer changes nothing
    assert fwd["calls"] == len(steps) + 1 == 6  # five steps of one handle, one of the other
    assert fwd["seconds"] > 0
    assert "run" not in vars(base) and "run" not in vars(other)
    with forward_seconds(base), pytest.raises(ValueError, match="nest no timers"):
        with forward_seconds(base):
            pass
    assert "run" not in vars(base)


def _one_token(handle):
    ids = handle.tokenizer(["a"], return_tensors="pt")
    return ids["input_ids"], ids["attention_mask"]
