import json
import math

import pytest
import torch
from safetensors.torch import save_file

from rlvr.measures.weightdiff import (
    SeedOverlap,
    UpdateSparsity,
    layer_of,
    seed_overlap,
    update_rank,
    update_sparsity,
)


def base_tensors() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    lm_head = torch.randn(10, 4, generator=g)
    lm_head[0, 0] = 1.0
    return {
        "model.embed_tokens.weight": torch.randn(10, 4, generator=g),  # 40, other
        "model.layers.0.self_attn.q_proj.weight": torch.randn(4, 4, generator=g),  # 16, layer 0
        "model.layers.0.input_layernorm.weight": torch.ones(4),  # 4, layer 0
        "model.layers.1.mlp.up_proj.weight": torch.randn(8, 4, generator=g),  # 32, layer 1
        "model.norm.weight": torch.ones(4),  # 4, other
        "lm_head.weight": lm_head,  # 40, other
    }


def tuned_tensors() -> dict[str, torch.Tensor]:
    t = {k: v.clone() for k, v in base_tensors().items()}
    t["model.layers.0.self_attn.q_proj.weight"][0, 0] += 1.0
    t["model.layers.0.self_attn.q_proj.weight"][1, 2] += 0.5
    t["model.layers.1.mlp.up_proj.weight"][3] += 0.1  # 4 entries
    # 1 + 1e-7 is a different float32 but the same bfloat16 (1.0).
    t["lm_head.weight"][0, 0] = 1.0 + 1e-7
    return t


@pytest.fixture
def pair(tmp_path):
    a = tmp_path / "a.safetensors"
    b_dir = tmp_path / "b"
    b_dir.mkdir()
    save_file(base_tensors(), str(a))
    save_file(tuned_tensors(), str(b_dir / "model.safetensors"))
    return a, b_dir


def test_tiny_difference_is_hidden_by_bf16_and_seen_by_fp32():
    assert torch.tensor(1.0 + 1e-7).item() != 1.0
    assert torch.tensor(1.0 + 1e-7).to(torch.bfloat16).item() == 1.0


def test_update_sparsity_bf16_shares_exact(pair):
    a, b = pair
    res = update_sparsity(a, b)
    assert isinstance(res, UpdateSparsity)
    assert (res.dtype, res.tol) == ("bf16", 1e-5)
    assert res.n_params == 136
    assert res.n_unchanged == 130
    assert res.sparsity == 130 / 136
    assert res.updated_share == 6 / 136
    by_name = {m.name: m for m in res.per_matrix}
    q = by_name["model.layers.0.self_attn.q_proj.weight"]
    assert (q.shape, q.n_params, q.n_updated, q.updated_share) == ((4, 4), 16, 2, 2 / 16)
    assert by_name["model.layers.1.mlp.up_proj.weight"].n_updated == 4
    assert by_name["lm_head.weight"].n_updated == 0
    layers = {lay.layer: (lay.n_params, lay.n_updated) for lay in res.per_layer}
    assert layers == {0: (20, 2), 1: (32, 4), "other": (84, 0)}
    assert [lay.layer for lay in res.per_layer] == [0, 1, "other"]


def test_update_sparsity_fp32_tol_zero_sees_tiny_difference(pair):
    a, b = pair
    exact = update_sparsity(a, b, tol=0.0, dtype="fp32")
    assert exact.n_unchanged == 136 - 7
    assert {lay.layer: lay.n_updated for lay in exact.per_layer}["other"] == 1
    assert update_sparsity(a, b, tol=0.0, dtype="bf16").n_unchanged == 130
    assert update_sparsity(a, b, tol=1e-5, dtype="fp32").n_unchanged == 130
    # A tolerance above every change leaves everything unchanged.
    assert update_sparsity(a, b, tol=2.0, dtype="fp32").updated_share == 0.0


def test_row_block_reading_matches_whole_tensors(pair):
    a, b = pair
    whole = update_sparsity(a, b, tol=0.0, dtype="fp32")
    blocked = update_sparsity(a, b, tol=0.0, dtype="fp32", chunk_size=5)
    assert whole == blocked


def test_sharded_index_checkpoint(tmp_path, pair):
    a_file, b = pair
    tensors = base_tensors()
    names = sorted(tensors)
    shards = {
        "model-00001-of-00002.safetensors": names[:3],
        "model-00002-of-00002.safetensors": names[3:],
    }
    sharded = tmp_path / "sharded"
    sharded.mkdir()
    weight_map = {}
    for fname, keys in shards.items():
        save_file({k: tensors[k] for k in keys}, str(sharded / fname))
        weight_map.update({k: fname for k in keys})
    (sharded / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": weight_map})
    )
    assert update_sparsity(sharded, b) == update_sparsity(a_file, b)
    (sharded / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="model-00002-of-00002.safetensors.*is missing"):
        update_sparsity(sharded, b)


def test_layer_of_parses_common_layouts():
    assert layer_of("model.layers.3.mlp.up_proj.weight") == 3
    assert layer_of("transformer.h.12.attn.c_attn.weight") == 12
    assert layer_of("model.embed_tokens.weight") == "other"
    assert layer_of("model.layers_norm.weight") == "other"


def test_update_rank_of_constructed_rank_two_update(tmp_path):
    g = torch.Generator().manual_seed(1)
    w = torch.randn(8, 6, generator=g)
    u, v = torch.randn(8, 2, generator=g), torch.randn(2, 6, generator=g)
    a = {"w": w, "same": torch.randn(5, 3, generator=g), "bias": torch.randn(6, generator=g)}
    b = {"w": w + u @ v, "same": a["same"].clone(), "bias": a["bias"] + 1.0}
    save_file(a, str(tmp_path / "a.safetensors"))
    save_file(b, str(tmp_path / "b.safetensors"))
    ranks = update_rank(tmp_path / "a.safetensors", tmp_path / "b.safetensors")
    assert ranks == {"same": 0.0, "w": 2 / 6}
    only = update_rank(tmp_path / "a.safetensors", tmp_path / "b.safetensors", names=["w"])
    assert only == {"w": 2 / 6}
    # An absolute threshold above every singular value of the update reports rank 0.
    big = update_rank(tmp_path / "a.safetensors", tmp_path / "b.safetensors", tol=1e6)
    assert big["w"] == 0.0
    with pytest.raises(ValueError, match="not 2-D"):
        update_rank(tmp_path / "a.safetensors", tmp_path / "b.safetensors", names=["bias"])


def test_seed_overlap_against_chance(tmp_path):
    base = {"w": torch.zeros(10, 10), "v": torch.zeros(100)}
    rl1 = {"w": torch.zeros(10, 10), "v": torch.zeros(100)}
    rl2 = {"w": torch.zeros(10, 10), "v": torch.zeros(100)}
    rl1["w"].view(-1)[0:20] = 1.0  # I1 = positions 0..19
    rl2["w"].view(-1)[10:50] = -1.0  # I2 = positions 10..49
    for name, t in [("base", base), ("rl1", rl1), ("rl2", rl2)]:
        save_file(t, str(tmp_path / f"{name}.safetensors"))
    res = seed_overlap(*(tmp_path / f"{n}.safetensors" for n in ("base", "rl1", "rl2")))
    assert isinstance(res, SeedOverlap)
    assert (res.n_params, res.n_updated_1, res.n_updated_2, res.n_both) == (200, 20, 40, 10)
    assert res.overlap_1 == 10 / 20 and res.chance_1 == 40 / 200
    assert res.overlap_2 == 10 / 40 and res.chance_2 == 20 / 200
    same = seed_overlap(*(tmp_path / f"{n}.safetensors" for n in ("base", "base", "rl2")))
    assert same.n_updated_1 == 0 and math.isnan(same.overlap_1) and same.overlap_2 == 0.0


def test_refuses_mismatched_architectures(tmp_path):
    a = base_tensors()
    extra = dict(a, **{"model.layers.2.mlp.up_proj.weight": torch.zeros(2, 2)})
    del extra["model.norm.weight"]
    reshaped = dict(a, **{"model.layers.1.mlp.up_proj.weight": torch.zeros(8, 5)})
    save_file(a, str(tmp_path / "a.safetensors"))
    save_file(extra, str(tmp_path / "extra.safetensors"))
    save_file(reshaped, str(tmp_path / "reshaped.safetensors"))
    with pytest.raises(
        ValueError,
        match=r"1 only in .*a.safetensors.*model.norm.weight.*"
        r"1 only in .*extra.safetensors.*model.layers.2.mlp.up_proj.weight",
    ):
        update_sparsity(tmp_path / "a.safetensors", tmp_path / "extra.safetensors")
    with pytest.raises(
        ValueError,
        match=r"'model.layers.1.mlp.up_proj.weight' has shape \(8, 4\)"
        r" in .* but \(8, 5\)",
    ):
        update_sparsity(tmp_path / "a.safetensors", tmp_path / "reshaped.safetensors")


def test_refuses_missing_files_and_bad_options(tmp_path, pair):
    a, b = pair
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=r"expected .*empty/model.safetensors"):
        update_sparsity(a, empty)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        update_sparsity(a, tmp_path / "nowhere")
    with pytest.raises(ValueError, match="dtype='int8' is not supported"):
        update_sparsity(a, b, dtype="int8")
    with pytest.raises(ValueError, match="tol=-1.0 must be a finite number >= 0"):
        update_sparsity(a, b, tol=-1.0)


def test_llama_checkpoints_from_save_pretrained(tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        vocab_size=50,
    )
    torch.manual_seed(0)
    base = LlamaForCausalLM(config)
    tuned = LlamaForCausalLM(config)
    tuned.load_state_dict(base.state_dict())
    with torch.no_grad():
        tuned.model.layers[1].mlp.down_proj.weight[0, :5] += 1.0
    base.save_pretrained(tmp_path / "base")
    tuned.save_pretrained(tmp_path / "tuned")
    res = update_sparsity(tmp_path / "base", tmp_path / "tuned")
    n_params = sum(p.numel() for p in base.parameters())
    assert res.n_params == n_params
    assert res.n_unchanged == n_params - 5
    layers = {lay.layer: lay.n_updated for lay in res.per_layer}
    assert layers == {0: 0, 1: 5, "other": 0}
    by_name = {m.name: m.n_updated for m in res.per_matrix}
    assert by_name["model.layers.1.mlp.down_proj.weight"] == 5
