"""The forward functions live in rlvr.generation.forward: the handles and the loop both build on them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch

import probes.handles
import rlvr.generation.forward as fwd
import rlvr.generation.sampling

ROOT = Path(__file__).resolve().parent.parent


def test_handles_and_the_loop_use_the_forward_module():
    for name in ("forward_arg_names", "new_cache", "position_ids_from_mask"):
        # one home: imported from the forward module, exported by neither user
        assert name in fwd.__all__
        assert not hasattr(probes.handles, name)
        assert name not in rlvr.generation.sampling.__all__


def test_the_probes_package_does_not_load_the_sampling_loop():
    probe = (
        "import json, sys, probes; probes.wrap; "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('rlvr'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, check=True, capture_output=True, text=True
    )
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert "rlvr.generation.forward" in loaded
    assert "rlvr.generation.sampling" not in loaded


def test_position_ids_skip_left_padding():
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    got = fwd.position_ids_from_mask(mask)
    assert got.tolist() == [[0, 0, 0, 1, 2], [0, 1, 2, 3, 4]]


def test_cache_kind_says_which_cache_a_loop_uses():
    import pytest

    class Other:
        backend = "nnsight"

    assert fwd.cache_kind(False) is None
    assert fwd.cache_kind(True) == "dynamic"  # no length known
    assert fwd.cache_kind(True, length=fwd.STATIC_FROM - 1) == "dynamic"
    assert fwd.cache_kind(True, length=fwd.STATIC_FROM) == "static"
    assert fwd.cache_kind(True, Other(), length=fwd.STATIC_FROM) == "dynamic"
    assert fwd.cache_kind("static") == "static" and fwd.cache_kind("dynamic") == "dynamic"
    assert fwd.cache_kind("static", Other()) == "dynamic"  # only plain transformers models
    for bad in ("fast", 1, None):
        with pytest.raises(ValueError, match="use_cache"):
            fwd.cache_kind(bad)


def test_a_pre_allocated_cache_fills_grows_and_selects_rows():
    from conftest import tiny_model
    from transformers import DynamicCache, MistralConfig, MistralForCausalLM

    from rlvr.generation.kv_cache import FilledStaticLayer

    for arch in ("llama", "qwen2", "gpt2"):
        cache = fwd.new_cache(tiny_model(arch), 6)
        assert all(isinstance(layer, FilledStaticLayer) for layer in cache.layers)
    sliding = MistralForCausalLM(
        MistralConfig(
            vocab_size=16,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=1,
            sliding_window=4,
        )
    )
    assert isinstance(fwd.new_cache(sliding, 6), DynamicCache)
    assert isinstance(fwd.new_cache(tiny_model("llama")), DynamicCache)

    layer = FilledStaticLayer(max_cache_len=3)
    k = torch.arange(2 * 1 * 2 * 4, dtype=torch.float32).view(2, 1, 2, 4)
    keys, values = layer.update(k, -k)
    assert layer.get_seq_length() == 2 and torch.equal(keys, k) and torch.equal(values, -k)
    assert layer.get_mask_sizes(1) == (3, 0)
    step = torch.full((2, 1, 1, 4), 7.0)
    for i in range(3):  # past the 3 allocated positions: the buffers double
        keys, _ = layer.update(step + i, step + i)
    assert layer.get_seq_length() == 5 and layer.max_cache_len == 6
    assert torch.equal(keys[:, :, :2], k) and torch.equal(keys[:, :, 4], step[:, :, 0] + 2)
    layer.batch_select_indices(torch.tensor([1]))
    keys, _ = layer.update(step[:1], step[:1])
    assert keys.shape == (1, 1, 6, 4) and torch.equal(keys[0, :, :2], k[1])
