"""llama.cpp control-vector GGUF: export, import, and the layer numbering against HF."""

from __future__ import annotations

import gguf
import numpy as np
import pytest
import torch
from conftest import char_tokenizer, tiny_model

import probes
from probes import Site, SteeringVector
from steering import Steer

D = 32


def _vec(sites, seed=0, fingerprint=None):
    g = torch.Generator().manual_seed(seed)
    return SteeringVector(
        {s: torch.randn(D, generator=g) for s in sites},
        "check",
        "diffmean",
        fingerprint or {},
        pooling="decision",
    )


@pytest.fixture(scope="module")
def hf():
    return probes.wrap(tiny_model("llama", n_layers=4), char_tokenizer())


def test_export_matches_what_llama_cpp_reads(hf, tmp_path):
    v = _vec([Site(1), Site(3, "resid_pre")], fingerprint=hf.fingerprint.to_dict())
    p = v.export_gguf(tmp_path / "check", coef=2.5)
    assert p.name == "check.gguf"
    r = gguf.GGUFReader(str(p))  # read independently of this project's reader
    assert r.get_field("general.architecture").contents() == "controlvector"
    assert r.get_field("controlvector.model_hint").contents() == "llama"
    assert r.get_field("controlvector.layer_count").contents() == 2
    tensors = {t.name: np.array(t.data) for t in r.tensors}
    assert sorted(tensors) == ["direction.1", "direction.2"]  # resid_pre of 3 = output of 2
    assert all(t.dtype == np.float32 and t.shape == (D,) for t in tensors.values())
    np.testing.assert_allclose(tensors["direction.1"], 2.5 * v[Site(1)].numpy(), rtol=1e-6)
    np.testing.assert_allclose(
        tensors["direction.2"], 2.5 * v[Site(3, "resid_pre")].numpy(), rtol=1e-6
    )


def test_round_trip_keeps_vectors_and_provenance(hf, tmp_path):
    v = _vec([Site(1), Site(2)], fingerprint=hf.fingerprint.to_dict())
    back = SteeringVector.from_gguf(v.export_gguf(tmp_path / "v.gguf"))
    assert back.label == "check" and back.method == "diffmean" and back.pooling == "decision"
    assert back.sites == v.sites and back.extra["gguf_coef"] == 1.0
    for s in v.sites:
        assert torch.equal(back[s], v[s])
    back.check(hf)  # same model: accepted
    with pytest.raises(ValueError, match="fitted on"):
        back.check(probes.wrap(tiny_model("llama", n_layers=4, seed=1), char_tokenizer()))
    # a plain control vector (as repeng writes it) imports too
    w = gguf.GGUFWriter(str(tmp_path / "plain.gguf"), "controlvector")
    w.add_string("controlvector.model_hint", "llama")
    w.add_uint32("controlvector.layer_count", 1)
    w.add_tensor("direction.3", np.ones(D, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    plain = SteeringVector.from_gguf(tmp_path / "plain.gguf")
    assert plain.sites == [Site(3)] and plain.label == "plain" and plain.fingerprint == {}
    assert plain.extra["model_hint"] == "llama" and torch.equal(plain[Site(3)], torch.ones(D))


def test_llama_cpp_semantics_equal_steer_at_all_positions(hf, tmp_path):
    # Emulate llama.cpp from the file alone: add direction.N to the output of decoder
    # layer N at every position. It must equal Steer(vec, coef, positions="all").
    v = _vec([Site(2, "resid_pre"), Site(3)], seed=4)
    p = v.export_gguf(tmp_path / "v", coef=1.5, model_hint="llama")
    dirs = {
        int(t.name.split(".")[1]): torch.tensor(np.array(t.data))
        for t in gguf.GGUFReader(str(p)).tensors
    }
    enc = hf.encode(["ab 12=c?d.", "xy 3"])
    hooks = [
        hf.model.model.layers[n].register_forward_hook(
            lambda m, a, out, d=d: (out[0] + d, *out[1:]) if isinstance(out, tuple) else out + d
        )
        for n, d in dirs.items()
    ]
    try:
        got = hf.model(
            **enc, position_ids=(enc["attention_mask"].cumsum(-1) - 1).clamp(min=0)
        ).logits
    finally:
        for h in hooks:
            h.remove()
    with Steer(v, coef=1.5, positions="all").applied(hf):
        want = hf.run(**enc).logits
    mask = enc["attention_mask"].bool()
    torch.testing.assert_close(got[mask], want[mask], atol=1e-5, rtol=1e-5)


def test_bad_exports_and_imports(tmp_path):
    for site in (Site(0), Site(0, "resid_pre"), Site(1, "resid_pre")):
        with pytest.raises(ValueError, match="llama.cpp cannot steer"):
            _vec([site, Site(2)]).export_gguf(tmp_path / "x", model_hint="llama")
    assert not list(tmp_path.iterdir())  # nothing written
    with pytest.raises(ValueError, match="no model hint"):
        _vec([Site(2)]).export_gguf(tmp_path / "x")
    for coef in (float("nan"), float("inf"), "2"):
        with pytest.raises(ValueError, match="coef must be a finite number"):
            _vec([Site(2)]).export_gguf(tmp_path / "x", coef=coef, model_hint="llama")
    assert not list(tmp_path.iterdir())
    # summed when two sites are one tensor (post of 1 == pre of 2), as steering both adds
    both = _vec([Site(1), Site(2, "resid_pre")])
    back = SteeringVector.from_gguf(both.export_gguf(tmp_path / "both", model_hint="llama"))
    torch.testing.assert_close(back[Site(1)], both[Site(1)] + both[Site(2, "resid_pre")])
    with pytest.raises(FileNotFoundError):
        SteeringVector.from_gguf(tmp_path / "missing.gguf")
    (tmp_path / "junk.gguf").write_bytes(b"not a gguf file")
    with pytest.raises(ValueError, match="not a readable GGUF"):
        SteeringVector.from_gguf(tmp_path / "junk.gguf")
    w = gguf.GGUFWriter(str(tmp_path / "model.gguf"), "llama")
    w.add_tensor("token_embd.weight", np.zeros((4, D), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(ValueError, match="architecture 'llama', not a control vector"):
        SteeringVector.from_gguf(tmp_path / "model.gguf")
