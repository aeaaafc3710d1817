"""The two declared contracts of a forward pass: the loop's ``Runner`` protocol, which
PlainHF and every handle satisfy, and the ``ForwardRequest`` a handle's ``run`` hands its
backend's ``_forward``."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import probes
from probes import Site
from probes.handles import ForwardRequest, HFHandle, ModelHandle
from rlvr.generation.forward import PlainHF, Runner, as_runner, position_ids_from_mask
from rlvr.generation.sampling import sample

BACKENDS = ("hf", "nnsight", "transformerlens")
PROMPTS = ["ab 12=c?d.", "xy 3", "q"]


def _handle(model_dir, backend: str):
    hf = probes.wrap(model_dir("llama"))
    return hf if backend == "hf" else probes.wrap(hf.model, hf.tokenizer, backend=backend)


def _spy(handle) -> list[ForwardRequest]:
    """Record every request the handle's backend receives (the pass still runs)."""
    seen: list[ForwardRequest] = []
    real = handle._forward

    def forward(request):
        seen.append(request)
        return real(request)

    handle._forward = forward
    return seen


def test_plain_hf_and_every_handle_are_runners_the_loop_drives_alike(model_dir):
    ref_handle = probes.wrap(model_dir("llama"))
    plain, module = as_runner(ref_handle.model, ref_handle.tokenizer)
    assert isinstance(plain, PlainHF) and isinstance(plain, Runner)
    assert module is ref_handle.model
    assert not isinstance(ref_handle.model, Runner)  # a bare module has no run/tokenizer
    opts = dict(temperature=0, max_new_tokens=6, eos_token_id=[], progress=False)
    want = sample(ref_handle.model, PROMPTS, tokenizer=ref_handle.tokenizer, **opts)
    for backend in BACKENDS:
        h = _handle(model_dir, backend)
        assert isinstance(h, Runner), backend
        assert as_runner(h, None)[0] is h
        got = sample(h, PROMPTS, **opts)
        assert got.token_ids == want.token_ids, backend
        for a, b in zip(got.logprobs, want.logprobs):
            torch.testing.assert_close(torch.tensor(a), torch.tensor(b), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("backend", BACKENDS)
def test_run_hands_the_backend_one_checked_request(backend, model_dir):
    h = _handle(model_dir, backend)
    seen = _spy(h)
    enc = h.encode(["abcdef", "xy"])  # left padding in the second row
    ids, mask = enc["input_ids"], enc["attention_mask"]
    rows, cols = torch.tensor([0, 1]), torch.tensor([5, 5])

    def edit(x):
        return x * 1.0

    out = h.run(
        ids,
        mask,
        read=["1", Site(0, "resid_pre"), "1"],
        index=(rows, cols),
        edits={"blocks.2.hook_resid_post": edit},
        logits_to_keep=2,
    )
    (req,) = seen
    assert req.input_ids is ids and req.attention_mask is mask
    assert torch.equal(req.position_ids, position_ids_from_mask(mask))
    assert req.reads == (Site(0, "resid_pre"), Site(1))  # parsed, checked, depth order
    assert dict(req.edits) == {Site(2): edit}
    assert req.index[0] is rows and req.index[1] is cols
    assert req.stop_site is None and req.past_key_values is None and req.use_cache is False
    assert req.logits_to_keep == 2
    assert out.logits.shape[1] == 2 and set(out.acts) == {Site(1), Site(0, "resid_pre")}
    with pytest.raises(dataclasses.FrozenInstanceError):
        req.use_cache = True  # type: ignore[misc]
    with pytest.raises(TypeError):
        req.edits[Site(0)] = edit  # type: ignore[index]

    # defaults filled once, in run: a full mask, positions from it; stop at the deepest read
    h.run(ids, read=[Site(2), Site(0)], stop_early=True)
    req = seen[-1]
    assert torch.equal(req.attention_mask, torch.ones_like(ids))
    assert torch.equal(req.position_ids, position_ids_from_mask(req.attention_mask))
    assert req.stop_site == Site(2) and dict(req.edits) == {}

    # what the loop passes reaches the backend as given: its positions, cache, last logits
    seen.clear()
    sample(h, ["ab", "xyz"], temperature=0, max_new_tokens=3, eos_token_id=[], progress=False)
    assert [r.input_ids.shape[1] for r in seen] == [4, 1, 1]  # prefill, then one token
    assert all(r.use_cache and r.past_key_values is not None for r in seen)
    assert all(r.logits_to_keep == 1 for r in seen)
    assert seen[1].position_ids.tolist() == [[3], [4]]  # "<s>ab" and "<s>xyz": next positions


def test_a_backend_must_implement_forward(model_dir):
    ref = probes.wrap(model_dir("llama"))

    class NoForward(ModelHandle):
        backend = "none"

    with pytest.raises(TypeError, match="_forward"):
        NoForward(ref.model, ref.tokenizer)
    with pytest.raises(TypeError, match="_forward"):
        ModelHandle(ref.model, ref.tokenizer)  # type: ignore[abstract]

    class Echo(HFHandle):
        def _forward(self, request: ForwardRequest):
            return super()._forward(request)

    echo = Echo(ref.model, ref.tokenizer)
    enc = ref.encode(["abc"])
    torch.testing.assert_close(echo.run(**enc).logits, ref.run(**enc).logits)
