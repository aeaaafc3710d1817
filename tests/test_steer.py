"""Steering through the generation loop and plain forward passes, on every adapter.

Each test pins one known steering defect of peer libraries (ANCHORS.md) as absent:
position targeting under a KV cache, left padding, per-row decisions, per-instance state,
hooks left behind, and layer off-by-ones.
"""

from __future__ import annotations

import pytest
import torch
from conftest import char_tokenizer, tiny_model

import probes
from probes import Site
from rlvr import sample
from steering import Steer

PROMPTS = ["ab 12=c?d.", "xy 3", "hello world, 7+8=", "q"]
D = 32


@pytest.fixture(scope="module")
def hf():
    return probes.wrap(tiny_model("llama"), char_tokenizer())


def _vec(seed: int = 0, scale: float = 4.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(D, generator=g) * scale


class StepLogits:
    """Callback: last-position logits per (prompt, sample) row and step (live rows only)."""

    def __init__(self):
        self.rows: dict[tuple[int, int], list[torch.Tensor]] = {}

    def __call__(self, step, ctx):
        for r, (i, j) in enumerate(zip(ctx.prompt_index.tolist(), ctx.sample_index.tolist())):
            if bool(ctx.stepped[r]):
                self.rows.setdefault((i, j), []).append(ctx.logits[r].clone())


def _run(h, steer=None, prompts=PROMPTS, **kw):
    rec = StepLogits()
    opts = dict(temperature=0, max_new_tokens=10, progress=False)
    opts.update(kw)
    out = sample(h, prompts, controller=steer, callback=rec, **opts)
    return out, rec.rows


def _assert_same(a, b, tol=1e-5):
    assert a[0].token_ids == b[0].token_ids
    for row, steps in a[1].items():
        torch.testing.assert_close(torch.stack(steps), torch.stack(b[1][row]), atol=tol, rtol=tol)


def _fire_at(step_to_fire, label=True, rows=None):
    def decide(step, ctx):
        return [
            label if step == step_to_fire and (rows is None or i in rows) else None
            for i in ctx.prompt_index.tolist()
        ]

    return decide


MODES = {
    "all": "all",
    "prompt": "prompt",
    "generated": "generated",
    "explicit": [[0, 3, 12], [5, 6], [2, 19, 20, 21], []],
    "decision": lambda step, ctx: [
        True if (step + i) % 3 == 0 else None for i in ctx.prompt_index.tolist()
    ],
}


# -- coefficient, timing, rows ---------------------------------------------------------


def test_coefficient_zero_is_unsteered(hf):
    base = _run(hf)
    for mode in MODES.values():
        _assert_same(_run(hf, Steer({Site(1): _vec()}, coef=0.0, positions=mode)), base, tol=0)
    steered = _run(hf, Steer({Site(1): _vec()}, coef=1.0))
    assert steered[0].token_ids != base[0].token_ids


def test_vector_fired_at_step_t_changes_nothing_before_t(hf):
    t = 4
    base = _run(hf, max_new_tokens=8)
    out = _run(hf, Steer({Site(1): _vec()}, positions=_fire_at(t)), max_new_tokens=8)
    for row, steps in base[1].items():
        torch.testing.assert_close(
            torch.stack(out[1][row][:t]), torch.stack(steps[:t]), atol=0, rtol=0
        )
        assert (out[1][row][t] - steps[t]).abs().max() > 1e-3  # step t is steered
    for i, extra in enumerate(out[0].extra):
        L = len(hf.tokenizer(PROMPTS[i])["input_ids"])
        assert extra["fired"] == [(t, L + t - 1, None)]  # the position predicting token t


def test_decision_per_row_touches_only_that_row(hf):
    base = _run(hf)
    out = _run(hf, Steer({Site(0): _vec()}, positions=_fire_at(2, rows={1})))
    for row in base[1]:
        same = torch.equal(torch.stack(out[1][row][:3]), torch.stack(base[1][row][:3]))
        assert same == (row[0] != 1), row  # only prompt 1, and only from step 2 on
    assert [bool(e) for e in out[0].extra] == [False, True, False, False]


def test_explicit_indices_hit_only_those_rows_and_positions(hf):
    v = _vec()
    enc = hf.encode(PROMPTS)  # left-padded: every row has a different offset
    idx = [[0, 3], [], [5], [1]]
    site = Site(1)
    base = hf.run(**enc, read=[site]).acts[site]
    with Steer({site: v}, coef=2.0, positions=idx).applied(hf):
        got = hf.run(**enc, read=[site]).acts[site]
    diff = got - base
    pad = enc["attention_mask"].shape[1] - enc["attention_mask"].sum(1)
    want = torch.zeros_like(diff)
    for r, positions in enumerate(idx):
        for p in positions:
            want[r, int(pad[r]) + p] = 2.0 * v
    torch.testing.assert_close(diff, want, atol=1e-5, rtol=0)


def test_explicit_indices_in_generation_reach_generated_positions(hf):
    L1 = len(hf.tokenizer(PROMPTS[1])["input_ids"])
    idx = [[], [L1 + 2], [], []]  # generated token 2 of prompt 1; it predicts token 3
    base = _run(hf)
    out = _run(hf, Steer({Site(1): _vec()}, positions=idx))
    for row, steps in base[1].items():
        n_same = 3 if row[0] == 1 else len(steps)
        torch.testing.assert_close(torch.stack(out[1][row][:n_same]), torch.stack(steps[:n_same]))
    assert (out[1][(1, 0)][3] - base[1][(1, 0)][3]).abs().max() > 1e-3


@pytest.mark.parametrize("mode", list(MODES))
def test_left_padding_steers_the_right_positions(hf, mode):
    """Batched (left-padded) == one prompt at a time, under steering."""
    st = Steer({Site(1): _vec(1), Site(0, "resid_pre"): _vec(2, 1.0)}, positions=MODES[mode])
    batched = _run(hf, st, n=2, temperature=1.0, seed=4)
    single = _run(hf, st, n=2, temperature=1.0, seed=4, batch_size=1)
    _assert_same(batched, single)
    assert batched[0].extra == single[0].extra


@pytest.mark.parametrize("mode", list(MODES))
def test_kv_cached_steering_equals_recompute(hf, mode):
    """The peers' token_indices defect: steering must not change when the cache is on."""
    st = Steer({Site(2): _vec(3)}, coef=1.5, positions=MODES[mode])
    cached = _run(hf, st, n=2, temperature=1.0, seed=1)
    full = _run(hf, st, n=2, temperature=1.0, seed=1, use_cache=False)
    _assert_same(cached, full)
    assert cached[0].extra == full[0].extra


def test_generated_and_prompt_split_the_positions(hf):
    v = _vec()
    enc = hf.encode(["ab 12=c?d."])
    site = Site(1)
    base = hf.run(**enc, read=[site]).acts[site]
    parts = {}
    for pos in ("prompt", "generated", "all"):
        with Steer({site: v}, positions=pos).applied(hf, prompt_lengths=[4]):
            parts[pos] = hf.run(**enc, read=[site]).acts[site] - base
    hit = {k: (d.abs().amax(-1) > 0)[0].tolist() for k, d in parts.items()}
    assert hit["prompt"] == [True] * 4 + [False] * 7
    assert hit["generated"] == [False] * 4 + [True] * 7
    assert hit["all"] == [True] * 11


# -- vectors, labels, ops ---------------------------------------------------------------


def test_labelled_vectors_and_the_router_picks_which(hf):
    va, vb = _vec(1), _vec(2)
    sva = probes.SteeringVector({Site(1): va}, label="verify", method="diffmean")
    svb = probes.SteeringVector({Site(1): vb, Site(2): vb}, label="backtrack", method="diffmean")
    choose = {0: "verify", 1: "backtrack"}
    router = Steer(
        [sva, svb], positions=lambda step, ctx: [choose.get(i) for i in ctx.prompt_index.tolist()]
    )
    out = _run(hf, router)
    assert out[0].extra[0]["fired"][0][2] == "verify"
    assert out[0].extra[1]["fired"][0][2] == "backtrack" and out[0].extra[2] == {}
    # each row matches steering that row alone with its own vector
    alone_a = _run(hf, Steer({Site(1): va}), prompts=PROMPTS[:1])
    alone_b = _run(hf, Steer({Site(1): vb, Site(2): vb}), prompts=PROMPTS[1:2])
    assert out[0].token_ids[0] == alone_a[0].token_ids[0]
    assert out[0].token_ids[1] == alone_b[0].token_ids[0]
    # the same spec as a mapping label -> {site: vector}
    again = Steer({"verify": {Site(1): va}, "backtrack": svb}, positions=router.positions)
    assert _run(hf, again)[0].token_ids == out[0].token_ids
    with pytest.raises(ValueError, match="return the label"):
        _run(hf, Steer([sva, svb], positions=lambda s, ctx: [True] * ctx.batch_size))
    with pytest.raises(ValueError, match="returned 'nope'"):
        _run(hf, Steer([sva, svb], positions=lambda s, ctx: ["nope"] * ctx.batch_size))


def test_a_steer_holds_no_state_between_runs_or_instances(hf):
    st = Steer({Site(1): _vec()}, positions=MODES["decision"])
    a, b = _run(hf, st), _run(hf, st)
    _assert_same(a, b, tol=0)
    assert a[0].extra == b[0].extra
    other = Steer({Site(1): _vec(9)}, positions="all")
    _run(hf, other)
    _assert_same(_run(hf, st), a, tol=0)


def test_site_convention_post_of_l_is_pre_of_l_plus_1(hf):
    v = _vec()
    a = _run(hf, Steer({Site(0, "resid_post"): v}))
    b = _run(hf, Steer({Site(1, "resid_pre"): v}))
    _assert_same(a, b)


def test_ablation_removes_the_component(hf):
    v = _vec()
    u = v / v.norm()
    enc = hf.encode(PROMPTS)
    site = Site(1)
    mask = enc["attention_mask"].bool()
    base = hf.run(**enc, read=[site]).acts[site]
    with Steer({site: v}, op="ablate").applied(hf):
        got = hf.run(**enc, read=[site]).acts[site]
    assert (base[mask] @ u).abs().max() > 1e-2  # there is a component to remove
    torch.testing.assert_close(got[mask] @ u, torch.zeros(int(mask.sum())), atol=1e-5, rtol=0)
    want = base - (base @ u)[..., None] * u
    torch.testing.assert_close(got[mask], want[mask], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got[~mask], base[~mask])  # padding untouched
    with Steer({site: v}, op="ablate", coef=0.5).applied(hf):
        half = hf.run(**enc, read=[site]).acts[site]
    torch.testing.assert_close(half[mask] @ u, 0.5 * (base[mask] @ u), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="zero vector"):
        Steer({site: torch.zeros(D)}, op="ablate")


def test_edits_for_and_nesting_with_callers_edits(hf):
    v = _vec()
    enc = hf.encode(PROMPTS)
    st = Steer({Site(1): v})
    explicit = hf.run(**enc, edits=st.edits_for(**enc)).logits
    with st.applied(hf):
        patched = hf.run(**enc).logits
        both = hf.run(**enc, edits={Site(1): lambda h: h - v}).logits  # caller's edit first
        with Steer({Site(1): -v}).applied(hf):
            nested = hf.logits(**enc)
    torch.testing.assert_close(explicit, patched)
    plain = hf.run(**enc).logits
    mask = enc["attention_mask"].bool()
    torch.testing.assert_close(both[mask], plain[mask], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(nested[mask], plain[mask], atol=1e-5, rtol=1e-5)
    assert "run" not in hf.__dict__


# -- cleanup and validation --------------------------------------------------------------


def _no_hooks(model: torch.nn.Module) -> bool:
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_hooks_are_gone_after_an_exception():
    fresh = tiny_model("llama")
    h = probes.wrap(tiny_model("llama"), char_tokenizer())
    enc = h.encode(PROMPTS)
    want = fresh(**enc).logits  # HF's own forward
    want_run = probes.wrap(fresh, h.tokenizer).run(**enc).logits  # the handle's (cumsum positions)
    st = Steer({Site(1): _vec()})
    with pytest.raises(RuntimeError, match="boom"):
        with st.applied(h):
            h.run(**enc)
            raise RuntimeError("boom")
    assert "run" not in h.__dict__ and _no_hooks(h.model)
    torch.testing.assert_close(h.run(**enc).logits, want_run, atol=0, rtol=0)

    def explode(step, ctx):  # raises inside the forward, mid-generation
        if step == 3:
            raise RuntimeError("router failed")
        return [True] * ctx.batch_size

    with pytest.raises(RuntimeError, match="router failed"):
        sample(h, PROMPTS, controller=Steer({Site(1): _vec()}, positions=explode), progress=False)

    class EditExplodes:
        def edits(self, step, ctx):
            def bad(x):
                raise RuntimeError("edit failed")

            return {Site(2): bad} if step == 2 else None

    with pytest.raises(RuntimeError, match="edit failed"):
        sample(h, PROMPTS, controller=[st, EditExplodes()], progress=False)
    assert _no_hooks(h.model)
    torch.testing.assert_close(h.model(**enc).logits, want, atol=0, rtol=0)
    torch.testing.assert_close(h.run(**enc).logits, want_run, atol=0, rtol=0)


def test_wrong_width_and_site_fail_early_with_clear_errors(hf):
    calls = []
    cb = lambda step, ctx: calls.append(step)  # noqa: E731
    with pytest.raises(ValueError, match="width 16 but this model's d_model is 32"):
        sample(
            hf, PROMPTS, controller=Steer({Site(1): torch.ones(16)}), callback=cb, progress=False
        )
    with pytest.raises(ValueError, match="layer 9 out of range: this model has 3 layers"):
        sample(hf, PROMPTS, controller=Steer({Site(9): _vec()}), callback=cb, progress=False)
    with pytest.raises(ValueError, match="layer 9 out of range"):
        with Steer({Site(9): _vec()}).applied(hf):
            pass
    assert calls == [] and "run" not in hf.__dict__
    with pytest.raises(ValueError, match="disagree on d_model"):
        Steer({"a": {Site(1): torch.ones(32)}, "b": {Site(1): torch.ones(16)}})
    with pytest.raises(ValueError, match="unknown positions"):
        Steer({Site(1): _vec()}, positions="last")
    with pytest.raises(ValueError, match="unknown op"):
        Steer({Site(1): _vec()}, op="multiply")
    with pytest.raises(ValueError, match="1-D"):
        Steer({Site(1): torch.ones(2, 32)})
    with pytest.raises(ValueError, match="index lists for 1 prompts"):
        sample(hf, PROMPTS, controller=Steer({Site(1): _vec()}, positions=[[0]]), progress=False)
    with pytest.raises(TypeError, match="needs a model handle"):
        sample(hf.model, PROMPTS, tokenizer=hf.tokenizer, controller=Steer({Site(1): _vec()}))


# -- every adapter ----------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gpt2"])
def test_adapters_give_the_same_steered_tokens_and_logits(arch, model_dir):
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    path = model_dir(arch)
    tok = PreTrainedTokenizerFast.from_pretrained(path)
    handles = {
        "hf": probes.wrap(AutoModelForCausalLM.from_pretrained(path).eval(), tok),
        "nnsight": probes.wrap(
            AutoModelForCausalLM.from_pretrained(path).eval(), tok, backend="nnsight"
        ),
        "transformerlens": probes.wrap(path, tokenizer=tok, backend="transformerlens"),
    }
    st = Steer({Site(1): _vec(5), Site(2, "resid_pre"): _vec(6, 1.0)}, positions=MODES["decision"])
    runs = {
        name: _run(h, st, n=2, temperature=1.0, seed=2, max_new_tokens=8)
        for name, h in handles.items()
    }
    for name in ("nnsight", "transformerlens"):
        _assert_same(runs[name], runs["hf"])
    base = _run(handles["hf"], n=2, temperature=1.0, seed=2, max_new_tokens=8)
    assert base[0].token_ids != runs["hf"][0].token_ids  # steering did something
    enc = handles["hf"].encode(PROMPTS)
    mask = enc["attention_mask"].bool()
    ref = plain = None
    for h in handles.values():
        with Steer({Site(0): _vec(7)}, op="ablate").applied(h):
            logits = h.run(**enc).logits[mask]
        ref = logits if ref is None else ref
        torch.testing.assert_close(logits, ref, atol=1e-5, rtol=1e-4)
        # an exception inside the block or inside a forward leaves no edit behind
        with pytest.raises(RuntimeError, match="boom"):
            with st.applied(h):
                raise RuntimeError("boom")
        explode = Steer(
            {Site(1): _vec()}, positions=lambda step, ctx: 1 / 0 if step else [True] * 4
        )
        with pytest.raises(ZeroDivisionError):
            sample(h, PROMPTS, controller=explode, progress=False)
        after = h.run(**enc).logits[mask]
        plain = after if plain is None else plain
        torch.testing.assert_close(after, plain, atol=1e-5, rtol=1e-4)
    assert (plain - ref).abs().max() > 1e-3


# -- the model's own forward and generate inside Steer.applied ---------------------------


@pytest.mark.parametrize("mode", list(MODES))
def test_hf_generate_inside_applied_equals_steered_sample(hf, mode):
    st = Steer({Site(1): _vec(3), Site(0, "resid_pre"): _vec(4)}, coef=1.5, positions=MODES[mode])
    enc = hf.encode(PROMPTS)  # left-padded, as sample pads them
    width = enc["input_ids"].shape[1]
    kw = dict(max_new_tokens=10, do_sample=False, pad_token_id=0)
    plain = hf.model.generate(**enc, **kw)[:, width:]
    with st.applied(hf):
        steered = hf.model.generate(**enc, **kw)[:, width:]
    want = sample(hf, PROMPTS, controller=st, temperature=0, max_new_tokens=10, progress=False)
    for r, toks in enumerate(want.token_ids):
        assert steered[r, : len(toks)].tolist() == toks, (mode, r)
    assert not torch.equal(steered, plain)
    assert _no_hooks(hf.model) and "generate" not in hf.model.__dict__
    assert torch.equal(hf.model.generate(**enc, **kw)[:, width:], plain)  # nothing left behind


def test_model_forward_inside_applied_equals_handle_run(hf):
    st = Steer({Site(2): _vec(5)}, positions="all")
    enc = hf.encode(PROMPTS)
    pos = (enc["attention_mask"].cumsum(-1) - 1).clamp(min=0)
    with st.applied(hf):
        want = hf.run(**enc).logits  # steered once, not twice
        got = hf.model(**enc, position_ids=pos).logits
    mask = enc["attention_mask"].bool()
    torch.testing.assert_close(got[mask], want[mask], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(hf.run(**enc).logits[mask], want[mask])


def test_generate_with_several_samples_shares_each_prompts_positions(hf):
    idx = [[1, 2, 11, 12], [0, 5]]
    prompts = PROMPTS[:2]
    st = Steer({Site(1): _vec(6)}, coef=2.0, positions=idx)
    enc = hf.encode(prompts)
    width = enc["input_ids"].shape[1]
    with st.applied(hf):
        out = hf.model.generate(
            **enc, max_new_tokens=8, do_sample=True, top_k=1, num_return_sequences=2, pad_token_id=0
        )[:, width:]  # top_k=1: greedy draws, two rows per prompt
    want = sample(hf, prompts, controller=st, temperature=0, max_new_tokens=8, progress=False)
    for r, toks in enumerate(want.token_ids):
        assert out[2 * r, : len(toks)].tolist() == toks
        assert out[2 * r + 1, : len(toks)].tolist() == toks


def test_what_applied_cannot_steer_raises(hf, model_dir):
    enc = hf.encode(PROMPTS[:2])
    decide = Steer({Site(1): _vec()}, positions=MODES["decision"])
    with decide.applied(hf):
        with pytest.raises(ValueError, match="beam search"):
            hf.model.generate(**enc, max_new_tokens=3, num_beams=2, do_sample=False)
    with Steer({Site(1): _vec()}, positions="generated").applied(hf):
        with pytest.raises(ValueError, match="use_cache=False"):
            hf.model.generate(**enc, max_new_tokens=3, use_cache=False)
    # a cache filled before the block: its prompt is unknown
    from transformers import DynamicCache

    cache = DynamicCache()
    out = hf.model(**enc, cache=cache, use_cache=True)
    nxt = out.logits[:, -1].argmax(-1, keepdim=True)
    mask = torch.cat([enc["attention_mask"], torch.ones_like(nxt)], 1)
    with Steer({Site(1): _vec()}, positions="generated").applied(hf):
        with pytest.raises(ValueError, match="not started inside the block"):
            hf.model(input_ids=nxt, attention_mask=mask, cache=cache, use_cache=True)
    assert _no_hooks(hf.model)
    # a TransformerLens bridge's own forward is not steered: refused, handle.run still works
    tl = probes.wrap(probes.wrap(model_dir("llama")).model, backend="transformerlens")
    tl_enc = tl.encode(PROMPTS[:2])
    with Steer({Site(1): _vec()}).applied(tl):
        tl.run(**tl_enc)
        with pytest.raises(RuntimeError, match="TransformerLens bridge"):
            tl.bridge(tl_enc["input_ids"])
    tl.bridge(tl_enc["input_ids"])  # the refusal is gone after the block


def test_a_hand_written_cached_loop_inside_applied_is_steered_like_generate(hf):
    st = Steer({Site(1): _vec(8)}, coef=2.0, positions="generated")
    enc = hf.encode(PROMPTS)
    width = enc["input_ids"].shape[1]
    plain = hf.model.generate(**enc, max_new_tokens=6, do_sample=False, pad_token_id=0)
    with st.applied(hf):
        want = hf.model.generate(**enc, max_new_tokens=6, do_sample=False, pad_token_id=0)
        assert not torch.equal(want, plain)
        ids, mask = enc["input_ids"], enc["attention_mask"]
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        out = hf.model(input_ids=ids, attention_mask=mask, position_ids=pos)  # makes its cache
        toks = []
        for _ in range(6):
            nxt = out.logits[:, -1].argmax(-1, keepdim=True)
            toks.append(nxt)
            mask = torch.cat([mask, torch.ones_like(nxt)], 1)
            pos = pos[:, -1:] + 1
            cache = out.cache if hasattr(out, "cache") else out.past_key_values
            kw = {hf._cache_kwarg: cache}
            out = hf.model(input_ids=nxt, attention_mask=mask, position_ids=pos, **kw)
    got, want = torch.cat(toks, 1), want[:, width:]
    for r in range(len(PROMPTS)):  # generate pads after eos; the loop goes on
        eos = (want[r] == 2).nonzero()
        k = int(eos[0, 0]) + 1 if len(eos) else want.shape[1]
        assert torch.equal(got[r, :k], want[r, :k]), r
