"""The hybrid decoder: base writes, a router schedules; routers, modes, controls, recovery.

The sharp checks: a handoff hybrid firing at every token *is* the router model's own
decoding, one that never fires *is* the base's; cached = recompute; batched = unbatched;
logs and steered fractions are exactly what a constructed router does; steering the
logged positions with a plain Steer reproduces the steered hybrid; every control does what
it says (re-rank adds no vector and only picks from the base's top-k).
"""

from __future__ import annotations

import string

import numpy as np
import pytest
import torch
from conftest import char_tokenizer, tiny_model

import probes
from probes import Site
from rlvr import sample
from steering import Steer
from steering.hybrid import (
    AnyPositionRandomRouter,
    HybridDecoder,
    HybridEvent,
    ModelRouter,
    ProbeRouter,
)
from steering.recovery import recovery

PROMPTS = ["ab 12=c?d.", "xy 3", "hello world, 7+8=", "q"]
D = 32
NEW = 12
GREEDY = dict(temperature=0.0, max_new_tokens=NEW, progress=False)


def _peaked(seed: int):
    """A tiny random model whose next-token distributions are peaked, like a trained one's."""
    model = tiny_model("llama", seed=seed)
    with torch.no_grad():
        model.lm_head.weight.mul_(20)
    return probes.wrap(model, char_tokenizer())


@pytest.fixture(scope="module")
def base():
    return _peaked(0)


@pytest.fixture(scope="module")
def rl():
    return _peaked(1)


def _vecs(labels=("v", "c"), site=None, scale=0.05, seed=0):
    g = torch.Generator().manual_seed(seed)
    site = Site(1) if site is None else site
    return {lab: {site: torch.randn(D, generator=g) * scale} for lab in labels}


def always(prefix: str, nxt: str):
    return "v"


def never(prefix: str, nxt: str):
    return None


def letters(prefix: str, nxt: str):
    """A stand-in labeller: vowels begin 'v' segments, other letters 'c' segments."""
    c = nxt[:1]
    if c in "aeiou":
        return "v"
    if c in string.ascii_lowercase:
        return "c"
    return None


def _prompt_ids(h, prompts=PROMPTS):
    return [h.tokenizer(p)["input_ids"] for p in prompts]


def _last_logits(h, ids: list[int], edits=None) -> torch.Tensor:
    """Logits at every position of one unpadded sequence, (seq, vocab)."""
    with torch.no_grad():
        t = torch.tensor([ids])
        return h.run(t, torch.ones_like(t), edits=edits).logits[0].float()


# -- the sharp correctness checks ------------------------------------------------------


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_handoff_firing_every_token_is_the_router_model(base, rl, temperature):
    hyb = HybridDecoder(base, ModelRouter(rl, always), mode="handoff")
    kw = dict(temperature=temperature, top_p=0.9, max_new_tokens=NEW, progress=False, seed=3)
    got = hyb.generate(PROMPTS, n=2, **kw)
    want = sample(rl, PROMPTS, n=2, **kw)
    assert got.samples.token_ids == want.token_ids
    assert got.texts == want.texts
    assert got.steered_fraction == 1.0
    assert all(e.mode == "handoff" for g in got.generations for e in g.log)


@pytest.mark.parametrize("mode", ["handoff", "steer"])
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_never_firing_is_the_base_model(base, rl, mode, temperature):
    hyb = HybridDecoder(base, ModelRouter(rl, never), _vecs(), mode=mode, coef=8.0)
    kw = dict(temperature=temperature, max_new_tokens=NEW, progress=False, seed=5)
    got = hyb.generate(PROMPTS, n=2, **kw)
    want = sample(base, PROMPTS, n=2, **kw)
    assert got.samples.token_ids == want.token_ids
    assert got.samples.logprobs == want.logprobs
    assert got.steered_fraction == 0.0 and all(not g.log for g in got.generations)


def test_batched_equals_unbatched_with_rows_finishing_early(base, rl):
    hyb = HybridDecoder(base, ModelRouter(rl, letters), _vecs(), mode="steer", coef=3.0)
    kw = dict(temperature=1.0, max_new_tokens=16, progress=False, seed=1, stop=["a", "e"])
    one = hyb.generate(PROMPTS, n=3, batch_size=1, **kw)
    many = hyb.generate(PROMPTS, n=3, batch_size=12, **kw)
    assert one.samples.token_ids == many.samples.token_ids
    assert [g.log for g in one.generations] == [g.log for g in many.generations]
    lengths = {len(t) for t in many.samples.token_ids}
    assert len(lengths) > 1  # rows ended at different steps: the router's cache followed
    assert many.steered_fraction > 0


def test_same_seed_same_output_and_the_seed_matters(base, rl):
    hyb = HybridDecoder(base, ModelRouter(rl, letters, tau=0.3), _vecs(), coef=3.0)
    kw = dict(n=2, temperature=1.0, top_p=0.95, max_new_tokens=NEW, progress=False)
    a = hyb.generate(PROMPTS, seed=11, **kw)
    b = hyb.generate(PROMPTS, seed=11, **kw)
    c = hyb.generate(PROMPTS, seed=12, **kw)
    assert a.samples.token_ids == b.samples.token_ids
    assert [g.log for g in a.generations] == [g.log for g in b.generations]
    assert a.samples.token_ids != c.samples.token_ids


@pytest.mark.parametrize(
    "mode,unless_base", [("steer", False), ("handoff", False), ("handoff", True)]
)
def test_cached_router_equals_recomputing_everything(base, rl, mode, unless_base):
    router = ModelRouter(rl, letters, unless_base=unless_base)
    hyb = HybridDecoder(base, router, _vecs(), mode=mode, coef=3.0)
    kw = dict(n=2, temperature=1.0, max_new_tokens=NEW, progress=False, seed=2, stop=["z"])
    cached = hyb.generate(PROMPTS, **kw)
    full = hyb.generate(PROMPTS, use_cache=False, **kw)
    assert cached.samples.token_ids == full.samples.token_ids
    assert [g.log for g in cached.generations] == [g.log for g in full.generations]
    assert cached.steered_fraction > 0


@pytest.mark.parametrize("mode", ["steer", "handoff"])
def test_both_caches_give_the_same_hybrid(base, rl, mode):
    """The pre-allocated cache (both models) decodes exactly what the dynamic one does."""
    hyb = HybridDecoder(base, ModelRouter(rl, letters), _vecs(), mode=mode, coef=3.0)
    kw = dict(n=3, temperature=1.0, max_new_tokens=16, progress=False, seed=1, stop=["a", "e"])
    static = hyb.generate(PROMPTS, use_cache="static", batch_size=12, **kw)
    dyn = hyb.generate(PROMPTS, use_cache="dynamic", batch_size=12, **kw)
    assert static.samples.token_ids == dyn.samples.token_ids
    assert static.samples.logprobs == dyn.samples.logprobs
    assert [g.log for g in static.generations] == [g.log for g in dyn.generations]
    assert len({len(t) for t in dyn.samples.token_ids}) > 1 and dyn.steered_fraction > 0


def test_router_decisions_equal_the_router_on_the_full_prefix(base, rl):
    tau = 0.3
    hyb = HybridDecoder(base, ModelRouter(rl, letters, tau=tau), _vecs(), coef=3.0)
    res = hyb.generate(PROMPTS, n=2, temperature=1.0, max_new_tokens=NEW, progress=False)
    tok = base.tokenizer
    n_fired = 0
    for g, ids in zip(res.generations, [p for p in _prompt_ids(base) for _ in range(2)]):
        seq = ids + g.token_ids
        probs = torch.softmax(_last_logits(rl, seq), -1)  # one forward over the final prefix
        want = []
        for t in range(len(g.token_ids)):
            p, top = probs[len(ids) + t - 1].max(-1)
            prefix = tok.decode(seq[: len(ids) + t], skip_special_tokens=True)
            nxt = tok.decode(seq[: len(ids) + t] + [int(top)], skip_special_tokens=True)
            label = letters(prefix, nxt[len(prefix) :])
            if label is not None and float(p) >= tau:
                want.append((t, len(ids) + t - 1, label))
        assert [(e.step, e.position, e.label) for e in g.log] == want
        n_fired += len(want)
    assert 0 < n_fired < sum(len(g.token_ids) for g in res.generations)  # tau bites


def test_a_router_with_another_tokenizer_is_refused(base):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3}
    for c in reversed(string.ascii_lowercase + string.digits + " =?.:>|,+-"):
        vocab[c] = len(vocab)
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Split(pattern="", behavior="isolated")
    tk.decoder = decoders.Fuse()
    other_tok = PreTrainedTokenizerFast(
        tokenizer_object=tk, pad_token="<pad>", bos_token="<s>", eos_token="</s>"
    )
    other = probes.wrap(tiny_model("llama", seed=1), other_tok)
    with pytest.raises(ValueError, match="tokenizer differs.*ProbeRouter"):
        HybridDecoder(base, ModelRouter(other, always), mode="handoff")
    with pytest.raises(ValueError, match="ProbeRouter"):
        HybridDecoder(base, AnyPositionRandomRouter(0.5, ["v"], model=other), mode="handoff")


def test_log_positions_and_steered_fraction_on_a_constructed_router(base, rl):
    def every_third(step: int):  # fires at generated tokens 0, 3, 6, ...
        return ("v", "c")[step // 3 % 2] if step % 3 == 0 else None

    class EveryThird:  # a router written in a notebook: the protocol is one method
        labels = ("v", "c")

        def decide(self, view):
            return [every_third(view.step) for _ in view.live]

    hyb = HybridDecoder(base, EveryThird(), _vecs(), mode="steer", coef=2.0)
    res = hyb.generate(PROMPTS, n=2, **GREEDY)
    for g, ids in zip(res.generations, [p for p in _prompt_ids(base) for _ in range(2)]):
        want = []
        for t in range(len(g.token_ids)):
            label = every_third(t)
            if label is not None:
                want.append(HybridEvent(t, len(ids) + t - 1, label, "steer", g.token_ids[t]))
        assert g.log == want
        assert g.steered_fraction == pytest.approx(len(want) / len(g.token_ids))
        assert g.log and g.log[0].step == 0  # the first generated token can be steered
    total = sum(len(g.log) for g in res.generations)
    assert res.steered_fraction == pytest.approx(total / sum(g.n_tokens for g in res.generations))
    assert set(res.label_shares) <= {"v", "c"} and sum(res.label_shares.values()) == 1.0
    d = res.to_dict()
    assert d["generations"][0]["log"][0][:4] == [0, len(_prompt_ids(base)[0]) - 1, "v", "steer"]


def test_steering_the_logged_positions_with_a_plain_steer_reproduces_the_hybrid(base, rl):
    vec = _vecs(labels=("v",), scale=0.1)

    def vowels(prefix, nxt):
        return "v" if nxt[:1] in "aeiou" or prefix.endswith(":") or prefix.endswith("=") else None

    hyb = HybridDecoder(base, ModelRouter(rl, vowels), vec, coef=3.0)
    res = hyb.generate(PROMPTS, **GREEDY)
    positions = [[e.position for e in g.log] for g in res.generations]
    assert any(positions) and any(g.log and g.log[0].step == 0 for g in res.generations)
    plain = sample(base, PROMPTS, controller=Steer(vec, coef=3.0, positions=positions), **GREEDY)
    assert res.samples.token_ids == plain.token_ids
    unsteered = sample(base, PROMPTS, **GREEDY)
    assert res.samples.token_ids != unsteered.token_ids


def test_unless_base_fires_only_where_the_base_would_not_begin_the_label(base, rl):
    vec = _vecs(labels=("v",))

    def vowel(prefix, nxt):
        return "v" if nxt[:1] in "aeiouxyz" else None

    with pytest.raises(ValueError, match="not in steer mode"):
        HybridDecoder(base, ModelRouter(rl, vowel, unless_base=True), vec, mode="steer")
    for mode in ("handoff",):
        hyb = HybridDecoder(base, ModelRouter(rl, vowel, unless_base=True), vec, mode=mode)
        res = hyb.generate(PROMPTS, n=2, temperature=1.0, max_new_tokens=NEW, progress=False)
        n_fired = 0
        for g, ids in zip(res.generations, [p for p in _prompt_ids(base) for _ in range(2)]):
            for e in g.log:
                seq = ids + g.token_ids[: e.step]
                earlier = [[x.position for x in g.log if x.step < e.step]]
                edits = None
                if mode == "steer" and earlier[0]:
                    edits = Steer(vec, coef=1.0, positions=earlier).edits_for(torch.tensor([seq]))
                base_top = int(_last_logits(base, seq, edits)[-1].argmax())
                nxt = base.tokenizer.decode([base_top])
                assert vowel("", nxt) != e.label  # the base would not have begun it
                n_fired += 1
        assert n_fired > 0


def test_tau_dials_down_the_share_of_tokens_touched(base, rl):
    shares = []
    for tau in (0.0, 0.3, 1.0):
        hyb = HybridDecoder(base, ModelRouter(rl, letters, tau=tau), mode="handoff")
        res = hyb.generate(PROMPTS, n=2, **GREEDY)
        shares.append(res.steered_fraction)
    assert shares[0] > shares[1] > shares[2] == 0.0


# -- the probe router -------------------------------------------------------------------


def _fitted_probe(base, site: Site):
    from sklearn.linear_model import LogisticRegression

    ids = base.encode(PROMPTS * 3)
    with torch.no_grad():
        h = base.run(ids["input_ids"], ids["attention_mask"], read=[site]).acts[site]
    x = h[ids["attention_mask"].bool()].double().numpy()
    score = x @ np.random.default_rng(0).normal(size=x.shape[1])
    y = np.where(score > np.median(score), "v", "none")
    return LogisticRegression(max_iter=500).fit(x, y)


def test_probe_router_decides_in_the_same_forward_from_base_activations(base, rl):
    read, write = Site(1), Site(2)
    probe = _fitted_probe(base, read)
    hyb = HybridDecoder(base, ProbeRouter(probe, read), _vecs(labels=("v",), site=write), coef=4.0)
    res = hyb.generate(PROMPTS, n=2, **GREEDY)
    n_fired = 0
    for g, ids in zip(res.generations, [p for p in _prompt_ids(base) for _ in range(2)]):
        seq = torch.tensor([ids + g.token_ids])
        with torch.no_grad():  # steering at a later site never changes this site's values
            h = base.run(seq, read=[read]).acts[read][0]
        decide = [len(ids) + t - 1 for t in range(len(g.token_ids))]
        pred = probe.predict(h[decide].double().numpy())
        assert [e.step for e in g.log] == [t for t, p in enumerate(pred) if p == "v"]
        n_fired += len(g.log)
    assert 0 < n_fired < sum(g.n_tokens for g in res.generations)
    # handoff on the probe's decisions: the RL model emits the tokens the probe picks
    ho = HybridDecoder(
        base, ProbeRouter(probe, read, model=rl), mode="handoff", emit="argmax", labels=["v"]
    )
    res = ho.generate(PROMPTS, **GREEDY)
    for g, ids in zip(res.generations, _prompt_ids(base)):
        seq = ids + g.token_ids
        with torch.no_grad():
            h = base.run(torch.tensor([seq]), read=[read]).acts[read][0]
        decide = [len(ids) + t - 1 for t in range(len(g.token_ids))]
        pred = probe.predict(h[decide].double().numpy())
        assert [e.step for e in g.log] == [t for t, p in enumerate(pred) if p == "v"]
        rl_top = _last_logits(rl, seq).argmax(-1)
        assert all(e.token == int(rl_top[e.position]) for e in g.log)
    assert res.steered_fraction > 0
    # the decision must come before the vector in the forward pass
    with pytest.raises(ValueError, match="decision must come first"):
        HybridDecoder(base, ProbeRouter(probe, read), _vecs(labels=("v",), site=Site(0)))
    with pytest.raises(ValueError, match="router's model"):
        HybridDecoder(base, ProbeRouter(probe, read), mode="handoff", emit="sample")


# -- random router and the controls -----------------------------------------------------


def test_random_router_rate_labels_and_batch_independence(base):
    vecs = _vecs()
    kw = dict(n=4, temperature=1.0, max_new_tokens=16, progress=False, eos_token_id=[])
    for rate in (0.0, 1.0):
        res = HybridDecoder(base, AnyPositionRandomRouter(rate, ["v"]), vecs).generate(
            PROMPTS, **kw
        )
        assert res.steered_fraction == rate
    router = AnyPositionRandomRouter(0.3, {"v": 3, "c": 1}, seed=4)
    a = HybridDecoder(base, router, vecs).generate(PROMPTS, batch_size=16, **kw)
    b = HybridDecoder(base, router, vecs).generate(PROMPTS, batch_size=3, **kw)
    assert [g.log for g in a.generations] == [g.log for g in b.generations]
    assert 0.2 < a.steered_fraction < 0.4
    assert a.label_shares["v"] > a.label_shares["c"]


def test_random_vectors_keep_norms_and_bias_only_shares_one_vector(base, rl):
    vecs = {lab: {Site(1): v[Site(1)], Site(2): 2 * v[Site(1)]} for lab, v in _vecs().items()}
    hyb = HybridDecoder(base, ModelRouter(rl, letters), vecs, coef=2.0)
    rnd = hyb.replace(random_vectors=True, control_seed=3)
    for lab in vecs:
        for s in vecs[lab]:
            v, r = vecs[lab][s], rnd.vectors[lab][s]
            assert float(r.norm()) == pytest.approx(float(v.norm()), rel=1e-5)
            assert abs(float(torch.nn.functional.cosine_similarity(v, r, dim=0))) < 0.9
    again = hyb.replace(random_vectors=True, control_seed=3)
    assert all(torch.equal(again.vectors["v"][s], rnd.vectors["v"][s]) for s in vecs["v"])
    bias = hyb.replace(bias_only=True)
    for s in (Site(1), Site(2)):
        mean = (vecs["v"][s] + vecs["c"][s]) / 2
        assert torch.allclose(bias.vectors["v"][s], mean) and torch.allclose(
            bias.vectors["c"][s], mean
        )
    kw = dict(n=2, temperature=1.0, max_new_tokens=NEW, progress=False)
    out = {k: h.generate(PROMPTS, **kw) for k, h in dict(real=hyb, rnd=rnd, bias=bias).items()}
    assert out["real"].samples.token_ids != out["rnd"].samples.token_ids
    assert out["real"].samples.token_ids != out["bias"].samples.token_ids
    with pytest.raises(ValueError, match="adds none"):
        hyb.replace(rerank=True, random_vectors=True)


def test_rerank_adds_no_vector_and_picks_the_routers_favourite_of_the_base_top_k(base, rl):
    k = 3
    hyb = HybridDecoder(base, ModelRouter(rl, letters), _vecs(), coef=50.0, rerank=True, rerank_k=k)
    res = hyb.generate(PROMPTS, n=2, temperature=1.0, max_new_tokens=NEW, progress=False)
    n_changed = 0
    for g, ids, lps in zip(
        res.generations, [p for p in _prompt_ids(base) for _ in range(2)], res.samples.logprobs
    ):
        seq = ids + g.token_ids
        base_logits = _last_logits(base, seq)  # unsteered, one forward
        rl_logits = _last_logits(rl, seq)
        lp = torch.log_softmax(base_logits, -1)
        for t, tok in enumerate(g.token_ids):  # no vector was ever added
            assert lps[t] == pytest.approx(float(lp[len(ids) + t - 1, tok]), abs=1e-4)
        for e in g.log:
            p = e.position
            top = base_logits[p].topk(k).indices
            assert e.mode == "rerank" and e.token in top.tolist()
            assert e.token == int(top[rl_logits[p, top].argmax()])
            n_changed += e.token != int(top[0])
    assert res.steered_fraction > 0 and n_changed > 0
    # k = 1: the router can only pick the base's own greedy token
    one = hyb.replace(rerank_k=1).generate(PROMPTS, **GREEDY)
    assert one.samples.token_ids == sample(base, PROMPTS, **GREEDY).token_ids
    assert one.steered_fraction > 0


@pytest.mark.parametrize("backend", ["nnsight", "transformerlens"])
def test_the_hybrid_runs_the_same_through_every_adapter(base, rl, backend, tmp_path):
    if backend == "transformerlens":
        base.model.save_pretrained(tmp_path)
        base.tokenizer.save_pretrained(tmp_path)
        other = probes.wrap(tmp_path, backend=backend)
    else:
        other = probes.wrap(base.model, base.tokenizer, backend=backend)
    kw = dict(n=2, temperature=1.0, max_new_tokens=NEW, progress=False)
    for mode, unless_base in (("steer", False), ("handoff", True)):
        router = ModelRouter(rl, letters, unless_base=unless_base)
        a = HybridDecoder(base, router, _vecs(), coef=2.0, mode=mode).generate(PROMPTS, **kw)
        b = HybridDecoder(other, router, _vecs(), coef=2.0, mode=mode).generate(PROMPTS, **kw)
        assert a.samples.token_ids == b.samples.token_ids
        assert [g.log for g in a.generations] == [g.log for g in b.generations]
        assert a.steered_fraction > 0


# -- hygiene and errors -----------------------------------------------------------------


def test_no_hooks_or_patches_are_left_behind(base, rl):
    HybridDecoder(
        base, ModelRouter(rl, letters, unless_base=True), _vecs(), mode="handoff"
    ).generate(PROMPTS, **GREEDY)
    for h in (base, rl):
        assert "run" not in h.__dict__
        for layer in range(h.n_layers):
            mod = h.layer_module(layer)
            assert not mod._forward_hooks and not mod._forward_pre_hooks


def test_configuration_errors_are_clear(base, rl):
    with pytest.raises(ValueError, match="pass vectors="):
        HybridDecoder(base, ModelRouter(rl, letters), mode="steer")
    with pytest.raises(ValueError, match="unknown mode"):
        HybridDecoder(base, ModelRouter(rl, letters), _vecs(), mode="swap")
    with pytest.raises(ValueError, match="router's model"):
        HybridDecoder(base, AnyPositionRandomRouter(0.1, ["v"]), mode="handoff", emit="sample")
    with pytest.raises(ValueError, match="segment_start"):  # emit="label" needs the task
        HybridDecoder(base, AnyPositionRandomRouter(0.1, ["v"]), mode="handoff")
    with pytest.raises(TypeError, match="decide"):
        HybridDecoder(base, letters, _vecs())
    with pytest.raises(ValueError, match="emission rule of handoff"):
        HybridDecoder(base, ModelRouter(rl, letters), _vecs(), emit="argmax")
    with pytest.raises(ValueError, match="unknown emission rule"):
        HybridDecoder(base, ModelRouter(rl, letters), mode="handoff", emit="best")
    with pytest.raises(ValueError, match="tau"):
        ModelRouter(rl, letters, tau=1.5)
    with pytest.raises(ValueError, match="have no vector"):
        HybridDecoder(base, ModelRouter(rl, letters), _vecs(), labels=["v", "zz"])
    with pytest.raises(ValueError, match="d_model"):
        HybridDecoder(base, ModelRouter(rl, letters), {"v": {Site(1): torch.ones(7)}})
    wrong = probes.SteeringVector(
        {Site(1): torch.ones(D)}, "v", "diffmean", fingerprint=rl.fingerprint.to_dict()
    )
    with pytest.raises(ValueError, match="fitted on"):
        HybridDecoder(base, ModelRouter(rl, letters), {"v": wrong})
    HybridDecoder(base, ModelRouter(rl, letters), {"v": wrong}, check_vectors=False)


# -- recovery ---------------------------------------------------------------------------


def test_recovery_math_ci_and_refusal():
    rng = np.random.default_rng(0)
    n = 200
    base_acc = rng.uniform(0, 0.5, n)
    rl_acc = np.clip(base_acc + 0.3, 0, 1)
    hyb_acc = base_acc + 0.5 * (rl_acc - base_acc)
    r = recovery(hyb_acc, base_acc, rl_acc, n_boot=500, seed=1)
    assert r.value == pytest.approx(0.5)
    assert r.ci[0] <= 0.5 <= r.ci[1] and r.gap_is_clear and r.n_problems == n
    assert recovery(hyb_acc, base_acc, rl_acc, n_boot=500, seed=1) == r  # seeded
    assert recovery(rl_acc, base_acc, rl_acc, n_boot=50).value == pytest.approx(1.0)
    assert recovery(base_acc, base_acc, rl_acc, n_boot=50).value == pytest.approx(0.0)
    # exact small case and 0/1 samples per problem (problems x samples)
    small = recovery([1, 0, 1, 1], [0, 0, 1, 0], [1, 1, 1, 0], n_boot=200)
    assert small.value == pytest.approx((0.75 - 0.25) / (0.75 - 0.25))
    samples = np.array([[1, 0], [0, 0], [1, 1]])
    two_d = recovery(samples, np.zeros((3, 2)), np.ones((3, 2)), n_boot=100)
    assert two_d.value == pytest.approx(0.5)
    # noisy bootstrap: a wide interval around a noisy gap
    noisy = recovery(
        rng.integers(0, 2, 30), rng.integers(0, 2, 30), np.r_[np.ones(20), np.zeros(10)]
    )
    assert noisy.ci[0] < noisy.value < noisy.ci[1]
    with pytest.raises(ValueError, match="no RL gain for the hybrid to recover"):
        recovery(hyb_acc, base_acc, base_acc + 0.001)
    with pytest.raises(ValueError, match="no RL gain"):  # RL worse than base: no gain
        recovery(base_acc, rl_acc, base_acc)
    with pytest.raises(ValueError, match="same problems"):
        recovery([1, 0], [0, 0, 1], [1, 1, 1])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        recovery([2, 0], [0, 0], [1, 1])


@pytest.mark.parametrize("which", ["char", "byte_bpe"])
def test_row_texts_give_what_a_whole_decode_gives(which):
    from test_detokenize import _byte_bpe

    from steering.hybrid.texts import RowTexts

    tok = char_tokenizer() if which == "char" else _byte_bpe()
    texts = RowTexts(tok)
    assert (texts._pieces is not None) == (which == "char")
    ids = tok("the cat sat, 12 checks", add_special_tokens=False)["input_ids"]
    if which == "byte_bpe":
        ids = tok("the café 🐈 sat, check", add_special_tokens=False)["input_ids"]
    key = (0, 0)
    texts.start([key], [ids[:2]])
    cands = sorted(set(ids))
    for i, t in enumerate(ids[2:], start=2):
        texts.new_step()
        prefix = texts.prefix(key)
        assert prefix == tok.decode(ids[:i], skip_special_tokens=True)
        got = texts.next_texts(key, cands)
        assert got == [texts.next_text(key, c) for c in cands]
        if "\ufffd" not in prefix + tok.decode(ids[: i + 1], skip_special_tokens=True):
            want = tok.decode(ids[: i + 1], skip_special_tokens=True)[len(prefix) :]
            assert got[cands.index(t)] == want
        texts.append(key, t)
    assert texts.prefix(key) == tok.decode(ids, skip_special_tokens=True)


class _SpaceVowels:
    """A task whose 'v' can begin only after a space, and 'c' (any consonant) anywhere."""

    labels = ("v", "c")

    def segment_start(self, prefix: str, nxt: str):
        c = nxt[:1]
        if c in "aeiou" and prefix.endswith(" "):
            return "v"
        if c and c in string.ascii_lowercase and c not in "aeiou":
            return "c"
        return None

    def can_begin(self, prefix: str):
        return frozenset(self.labels)


class _AlwaysV:
    labels = ("v",)

    def decide(self, view):
        return ["v"] * len(view.live)


def test_a_firing_with_no_token_to_hand_over_is_no_event_and_stays_exclusive(base):
    """emit="label" finds no token for a fired label where it cannot begin: the base's own
    token stands, is checked by the exclusive rule (so an unfired scheduled label begins
    only where every likely token begins it, counted as unavoidable), and is not logged."""
    task = _SpaceVowels()
    dec = HybridDecoder(
        base, _AlwaysV(), task=task, mode="handoff", emit="label", exclusive=True, labels=("v", "c")
    )
    out = dec.generate(PROMPTS, n=2, temperature=1.0, max_new_tokens=16, progress=False, seed=0)
    tok = base.tokenizer
    began_c = unavoidable = events = 0
    for g, extra in zip(out.generations, out.samples.extra):
        unavoidable += extra.get("hybrid_unavoidable", 0)
        logged = {e.step for e in g.log}
        events += len(logged)
        text = PROMPTS[g.prompt_index]
        for t in range(len(g.token_ids)):
            nxt = tok.decode(g.token_ids[: t + 1], skip_special_tokens=True)[
                len(tok.decode(g.token_ids[:t], skip_special_tokens=True)) :
            ]
            began = task.segment_start(text, nxt)
            began_c += began == "c"
            assert (t in logged) == (began == "v")  # an event is a handed-over 'v' and only that
            text += nxt
    assert events > 0
    assert began_c == unavoidable
