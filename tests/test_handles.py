"""Sites and model handles: the site mapping is pinned, and all adapters agree."""

from __future__ import annotations

import pytest
import torch
from conftest import char_tokenizer, tiny_model

import probes
from probes import Site

ARCHS = ["llama", "qwen2", "gpt2"]


def _hidden(handle, enc):
    pos = (enc["attention_mask"].cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        return handle.model(**enc, position_ids=pos, output_hidden_states=True).hidden_states


@pytest.mark.parametrize("arch", ARCHS)
def test_site_mapping_pinned_to_hf_hidden_states(arch, model_dir):
    h = probes.wrap(model_dir(arch))
    enc = h.encode(["ab 12=c?d.", "xy 3"])
    L = h.n_layers
    sites = [Site(layer, k) for layer in range(L) for k in ("resid_pre", "resid_post")]
    out = h.run(**enc, read=sites)
    hs = _hidden(h, enc)
    for layer in range(L):
        # resid_pre of layer l is the input of layer l == hidden_states[l]
        torch.testing.assert_close(out.acts[Site(layer, "resid_pre")], hs[layer])
        if layer < L - 1:  # HF applies the final norm to hidden_states[-1]
            torch.testing.assert_close(out.acts[Site(layer, "resid_post")], hs[layer + 1])
        if layer > 0:
            torch.testing.assert_close(
                out.acts[Site(layer, "resid_pre")], out.acts[Site(layer - 1, "resid_post")]
            )


def test_site_names_and_parsing():
    assert Site(3).name == "blocks.3.hook_resid_post"
    assert Site.parse("blocks.2.hook_resid_pre") == Site(2, "resid_pre")
    assert Site.parse("4") == Site(4) and Site.parse("4.resid_pre") == Site(4, "resid_pre")
    assert Site(1, "resid_post").stream_index() == Site(2, "resid_pre").stream_index()
    with pytest.raises(ValueError, match="unknown site kind"):
        Site(1, "attn_out")
    with pytest.raises(ValueError, match="cannot read a Site"):
        Site.parse("layer three")


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_same_activations_through_all_adapters(arch, model_dir):
    hf = probes.wrap(model_dir(arch))
    enc = hf.encode(["ab 12=c?d.", "xy 3"])
    sites = [Site(0, "resid_post"), Site(1, "resid_pre"), Site(2, "resid_post")]
    ref = hf.run(**enc, read=sites)
    mask = enc["attention_mask"].bool()
    for backend in ("nnsight", "transformerlens"):
        other = probes.wrap(hf.model, hf.tokenizer, backend=backend)
        assert other.backend == backend
        out = other.run(**enc, read=sites)
        for s in sites:
            torch.testing.assert_close(out.acts[s][mask], ref.acts[s][mask], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(out.logits[mask], ref.logits[mask], atol=1e-5, rtol=1e-4)
        # edits land in the same place through every adapter
        edit = {Site(1, "resid_post"): lambda x: x + 0.5}
        a = hf.run(**enc, edits=edit, read=[Site(2, "resid_pre")]).acts[Site(2, "resid_pre")]
        b = other.run(**enc, edits=edit, read=[Site(2, "resid_pre")]).acts[Site(2, "resid_pre")]
        torch.testing.assert_close(a[mask], b[mask], atol=1e-5, rtol=1e-4)
        # stopping early still returns the right activations, and no logits
        st = other.run(**enc, read=[Site(1, "resid_pre")], stop_early=True)
        assert st.logits is None
        torch.testing.assert_close(
            st.acts[Site(1, "resid_pre")][mask],
            ref.acts[Site(1, "resid_pre")][mask],
            atol=1e-5,
            rtol=1e-4,
        )


def test_wrap_accepts_models_paths_and_handles(model_dir):
    path = model_dir("llama")
    h = probes.wrap(path)
    assert isinstance(h, probes.HFHandle)
    assert probes.wrap(h) is h
    assert isinstance(probes.wrap(h.model, h.tokenizer), probes.HFHandle)
    from nnsight.modeling.transformers import TransformersModel
    from transformer_lens.model_bridge import TransformerBridge

    nn = TransformersModel(h.model, tokenizer=h.tokenizer)
    assert isinstance(probes.wrap(nn), probes.NNsightHandle)
    bridge = TransformerBridge.boot_transformers(str(path), device="cpu")
    assert isinstance(probes.wrap(bridge), probes.TLHandle)
    assert probes.wrap(path, backend="transformerlens").fingerprint.matches(h.fingerprint)
    with pytest.raises(TypeError, match="cannot wrap"):
        probes.wrap(object())
    with pytest.raises(ValueError, match="unknown backend"):
        probes.wrap(h, backend="jax")
    with pytest.raises(ValueError, match="no checkpoint"):
        probes.wrap("/nonexistent/folder/model")


def test_fingerprint_identifies_weights(model_dir):
    a = probes.wrap(model_dir("llama", seed=0))
    b = probes.wrap(model_dir("llama", seed=1))
    a2 = probes.wrap(model_dir("llama", seed=0))
    assert a.fingerprint.matches(a2.fingerprint)
    assert not a.fingerprint.matches(b.fingerprint)
    fp = a.fingerprint
    assert (fp.n_layers, fp.d_model) == (3, 32) and fp.architecture == "LlamaForCausalLM"
    assert probes.Fingerprint.from_dict(fp.to_dict()) == fp


def test_stop_early_skips_later_layers():
    h = probes.wrap(tiny_model("llama", n_layers=4), _tok())
    calls = []
    hook = h.layer_module(3).register_forward_hook(lambda *a: calls.append(1))
    try:
        enc = h.encode(["abc"])
        h.run(**enc, read=[Site(1)], stop_early=True)
        assert calls == []
        h.run(**enc, read=[Site(1)])
        assert calls == [1]
    finally:
        hook.remove()


def test_bad_inputs_to_run(model_dir):
    h = probes.wrap(model_dir("llama"))
    enc = h.encode(["abc"])
    with pytest.raises(ValueError, match="layer 7 out of range.*3 layers"):
        h.run(**enc, read=[Site(7)])
    with pytest.raises(ValueError, match="empty input"):
        h.run(torch.zeros((1, 0), dtype=torch.long))
    with pytest.raises(ValueError, match="no texts"):
        h.encode([])
    with pytest.raises(ValueError, match="width 5.*d_model is 32"):
        h.check_vector(torch.zeros(5))


def _tok():
    from conftest import char_tokenizer

    return char_tokenizer()


def test_saved_character_tokenizer_is_loaded_as_saved(model_dir):
    # AutoTokenizer would pick Qwen2's own tokenizer class for a qwen2 folder
    h = probes.wrap(model_dir("qwen2"))
    ids = h.tokenizer("ab cd", add_special_tokens=False)["input_ids"]
    assert len(ids) == 5 and h.tokenizer.decode(ids) == "ab cd"


def test_transformerlens_adapter_leaves_the_users_model_alone(model_dir):
    hf = probes.wrap(model_dir("llama"))
    before = [n for n, _ in hf.model.named_modules()]
    probes.wrap(hf.model, hf.tokenizer, backend="transformerlens")
    assert [n for n, _ in hf.model.named_modules()] == before


def test_sites_given_as_a_tuple_and_depth_order(model_dir):
    h = probes.wrap(model_dir("llama"))
    enc = h.encode(["abc"])
    out = h.run(**enc, read=(Site(0), Site(1, "resid_pre")))
    assert set(out.acts) == {Site(0), Site(1, "resid_pre")}
    assert sorted([Site(1), Site(1, "resid_pre"), Site(0)]) == [
        Site(0),
        Site(1, "resid_pre"),
        Site(1),
    ]


def test_fingerprint_ignores_the_load_dtype_and_stop_early_refuses_a_cache(model_dir):
    path = model_dir("llama")
    assert probes.wrap(path).fingerprint.matches(
        probes.wrap(path, dtype=torch.bfloat16).fingerprint
    )
    h = probes.wrap(path)
    with pytest.raises(ValueError, match="half-filled"):
        h.run(**h.encode(["abc"]), read=[Site(0)], stop_early=True, use_cache=True)


@pytest.mark.parametrize("backend", ["hf", "nnsight", "transformerlens"])
def test_logits_to_keep_returns_the_last_positions(backend, model_dir):
    h = (
        probes.wrap(probes.wrap(model_dir("llama")).model, backend=backend)
        if backend != "hf"
        else probes.wrap(model_dir("llama"))
    )
    enc = h.encode(["abcdef", "xy"])
    full = h.run(**enc).logits
    last = h.run(**enc, logits_to_keep=1).logits
    assert last.shape[1] == 1
    torch.testing.assert_close(last[:, 0], full[:, -1], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("arch", ARCHS)
def test_one_checkpoint_one_fingerprint_and_tokenization_in_every_adapter(arch, model_dir):
    # each adapter loads the checkpoint its own way, as a user would
    from nnsight import LanguageModel
    from transformer_lens.model_bridge import TransformerBridge

    path = str(model_dir(arch))
    hf = probes.wrap(path)
    nn = probes.wrap(LanguageModel(path, dispatch=True))
    tl = probes.wrap(TransformerBridge.boot_transformers(path, device="cpu"))
    text = ["ab 12=c?d. xy", "q 3"]
    ref_ids = hf.tokenizer(text)["input_ids"]
    sites = [Site(0, "resid_pre"), Site(1), Site(2)]
    enc = hf.encode(text)
    mask = enc["attention_mask"].bool()
    ref = hf.run(**enc, read=sites)
    for other in (nn, tl):
        assert other.fingerprint.matches(hf.fingerprint), other.backend
        assert other.tokenizer(text)["input_ids"] == ref_ids, other.backend
        enc2 = other.encode(text)
        assert torch.equal(enc2["input_ids"], enc["input_ids"])
        out = other.run(**enc2, read=sites)
        for s in sites:
            torch.testing.assert_close(out.acts[s][mask], ref.acts[s][mask], atol=1e-5, rtol=0)
    # and another checkpoint of the same architecture is still told apart
    assert not tl.fingerprint.matches(probes.wrap(model_dir(arch, seed=1)).fingerprint)


def test_edits_naming_one_site_twice_are_refused():
    h = probes.wrap(tiny_model(), char_tokenizer())
    ids = torch.tensor([[5, 6, 7]])
    with pytest.raises(ValueError, match="twice"):
        h.run(ids, edits={"1": lambda x: x, Site(1): lambda x: x + 1})
