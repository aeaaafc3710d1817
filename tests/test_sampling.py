"""The one generation loop: seeds, padding, KV cache, stop strings, n, the controller protocol."""

from __future__ import annotations

import pytest
import torch
from conftest import char_tokenizer, tiny_model

import probes
from rlvr import Samples, sample
from rlvr.generation.controllers import StepContext

ARCHS = ["llama", "qwen2", "gpt2"]
# Different lengths, so a batch is left-padded.
PROMPTS = ["ab 12=c?d.", "xy 3", "hello world, 7+8=", "q"]


@pytest.fixture(scope="module")
def handles():
    cache: dict = {}

    def make(arch: str = "llama"):
        if arch not in cache:
            cache[arch] = probes.wrap(tiny_model(arch), char_tokenizer())
        return cache[arch]

    return make


def _close(a: list[list[float]], b: list[list[float]], tol: float = 1e-5) -> None:
    assert [len(x) for x in a] == [len(x) for x in b]
    for x, y in zip(a, b):
        torch.testing.assert_close(torch.tensor(x), torch.tensor(y), atol=tol, rtol=tol)


class StepLogits:
    """A callback keeping each step's last-position logits per (prompt, sample) row."""

    def __init__(self):
        self.by_row: dict[tuple[int, int], list[torch.Tensor]] = {}

    def __call__(self, step, ctx):
        for r, (i, j) in enumerate(zip(ctx.prompt_index.tolist(), ctx.sample_index.tolist())):
            if bool(ctx.stepped[r]):  # rows done before this step only get padding
                self.by_row.setdefault((i, j), []).append(ctx.logits[r].clone())


# -- seeds and batching ---------------------------------------------------------------


class Draws:
    """Callback: per (prompt, sample) row, each step's logits and token (live rows only)."""

    def __init__(self):
        self.rows: dict[tuple[int, int], list[tuple[torch.Tensor, int]]] = {}

    def __call__(self, step, ctx):
        for r, (i, j) in enumerate(zip(ctx.prompt_index.tolist(), ctx.sample_index.tolist())):
            if bool(ctx.stepped[r]):
                self.rows.setdefault((i, j), []).append((ctx.logits[r].clone(), int(ctx.tokens[r])))


def _same_draws_up_to_cdf_edges(a: Draws, b: Draws, seed: int, temperature: float) -> int:
    """What the docstring promises across batch shapes; returns how many rows diverged.

    Logits agree to float tolerance while the tokens agree; a row's tokens may differ
    only at a step whose uniform number lies within float rounding of a CDF edge between
    the two tokens (after that the rows continue from different tokens).
    """
    from rlvr.generation.draws import row_keys, step_uniform

    diverged = 0
    for (i, j), steps in a.rows.items():
        other = b.rows[(i, j)]
        key = row_keys(seed, torch.tensor([i]), torch.tensor([j]))
        for t, ((la, ta), (lb, tb)) in enumerate(zip(steps, other)):
            torch.testing.assert_close(la, lb, atol=1e-5, rtol=1e-5)
            if ta == tb:
                continue
            u = float(step_uniform(key, t)[0])
            cdf = torch.softmax(la.double() / temperature, -1).cumsum(-1)
            edges = cdf[min(ta, tb) : max(ta, tb)] / cdf[-1]
            assert float((edges - u).abs().min()) < 1e-5, (i, j, t)
            diverged += 1
            break
        else:
            assert len(steps) == len(other)
    return diverged


def test_same_seed_same_samples_and_batch_size_does_not_matter(handles):
    h = handles("llama")
    kw = dict(n=3, temperature=1.0, max_new_tokens=12, progress=False, eos_token_id=[])
    rec_a, rec_b = Draws(), Draws()
    a = sample(h, PROMPTS, seed=7, callback=rec_a, **kw)
    b = sample(h, PROMPTS, seed=7, callback=rec_b, **kw)
    # the same call is bit-identical
    assert a.token_ids == b.token_ids and a.texts == b.texts and a.logprobs == b.logprobs
    c = sample(h, PROMPTS, seed=8, **kw)
    assert c.token_ids != a.token_ids
    # documented: the draws do not depend on the batch; the logits only to float tolerance
    rec_d = Draws()
    sample(h, PROMPTS, seed=7, batch_size=2, callback=rec_d, **kw)
    assert _same_draws_up_to_cdf_edges(rec_a, rec_d, 7, 1.0) <= 1
    # samples of one prompt differ; more samples keep the first ones (same caveat)
    assert len(set(map(tuple, a.token_ids[:3]))) > 1
    rec_e = Draws()
    sample(h, PROMPTS, seed=7, callback=rec_e, **{**kw, "n": 5})
    rec_e.rows = {k: v for k, v in rec_e.rows.items() if k[1] < 3}
    assert _same_draws_up_to_cdf_edges(rec_a, rec_e, 7, 1.0) <= 1


def test_uniforms_do_not_depend_on_the_batch():
    from rlvr.generation.draws import row_keys, step_uniform

    pi, si = torch.tensor([0, 0, 1, 3, 3]), torch.tensor([0, 1, 0, 2, 5])
    whole = step_uniform(row_keys(11, pi, si), 4)
    for r in range(5):
        one = step_uniform(row_keys(11, pi[r : r + 1], si[r : r + 1]), 4)
        assert one[0] == whole[r]  # bit for bit
    assert len(set(whole.tolist())) == 5 and bool(((whole > 0) & (whole < 1)).all())
    assert not torch.equal(step_uniform(row_keys(12, pi, si), 4), whole)
    assert not torch.equal(step_uniform(row_keys(11, pi, si), 5), whole)


def test_steered_sampling_across_batch_sizes_keeps_the_documented_guarantee(handles):
    from probes import Site
    from steering import Steer

    h = handles("llama")
    g = torch.Generator().manual_seed(0)
    st = Steer({Site(1): torch.randn(32, generator=g) * 4}, positions="generated")
    kw = dict(n=16, temperature=1.0, max_new_tokens=10, seed=0, progress=False, eos_token_id=[])
    one, many = Draws(), Draws()
    sample(h, PROMPTS, controller=st, batch_size=1, callback=one, **kw)
    sample(h, PROMPTS, controller=st, batch_size=64, callback=many, **kw)
    assert len(one.rows) == 64
    assert _same_draws_up_to_cdf_edges(one, many, 0, 1.0) <= 2


@pytest.mark.parametrize("arch", ARCHS)
def test_greedy_batched_equals_unbatched(arch, handles):
    h = handles(arch)
    batched = sample(h, PROMPTS, temperature=0, max_new_tokens=16, batch_size=64, progress=False)
    for i, p in enumerate(PROMPTS):
        one = sample(h, [p], temperature=0, max_new_tokens=16, progress=False)
        assert one.token_ids[0] == batched.token_ids[i], (arch, p)
        _close(one.logprobs, [batched.logprobs[i]])
    two = sample(h, PROMPTS, temperature=0, max_new_tokens=16, batch_size=3, progress=False)
    assert two.token_ids == batched.token_ids


@pytest.mark.parametrize("arch", ARCHS)
def test_kv_cache_equals_recompute(arch, handles):
    h = handles(arch)
    kw = dict(n=2, temperature=0.8, max_new_tokens=14, seed=3, progress=False)
    cached, full = StepLogits(), StepLogits()
    a = sample(h, PROMPTS, callback=cached, **kw)
    b = sample(h, PROMPTS, callback=full, use_cache=False, **kw)
    assert a.token_ids == b.token_ids
    _close(a.logprobs, b.logprobs)
    assert cached.by_row.keys() == full.by_row.keys()
    for row, steps in cached.by_row.items():
        torch.testing.assert_close(
            torch.stack(steps), torch.stack(full.by_row[row]), atol=1e-5, rtol=1e-5
        )


def test_plain_hf_model_gives_the_same_samples(handles):
    h = handles("llama")
    kw = dict(n=2, temperature=1.0, max_new_tokens=10, seed=1, progress=False)
    assert (
        sample(h.model, PROMPTS, tokenizer=h.tokenizer, **kw).token_ids
        == sample(h, PROMPTS, **kw).token_ids
    )
    with pytest.raises(ValueError, match="tokenizer"):
        sample(h.model, PROMPTS)


def test_logprobs_are_the_model_distribution_at_temperature_one(handles):
    h = handles("gpt2")
    out = sample(h, ["xy 3"], temperature=0.3, max_new_tokens=4, seed=0, progress=False)
    enc = h.encode(["xy 3"])
    ids = torch.cat([enc["input_ids"], torch.tensor([out.token_ids[0]])], dim=1)
    with torch.no_grad():
        logits = h.model(input_ids=ids).logits[0]
    L = enc["input_ids"].shape[1]
    want = torch.log_softmax(logits[L - 1 : -1], -1).gather(1, ids[0, L:, None]).squeeze(1)
    torch.testing.assert_close(torch.tensor(out.logprobs[0]), want, atol=1e-5, rtol=1e-5)


# -- stop strings, eos, n --------------------------------------------------------------


class Spell:
    """A select-only controller that makes row r emit the characters of texts[r]."""

    def __init__(self, tok, texts):
        self.ids = [
            tok(t, add_special_tokens=False)["input_ids"] + [tok.eos_token_id] for t in texts
        ]

    def select(self, step, logits, proposed, ctx):
        return [self.ids[i][min(step, len(self.ids[i]) - 1)] for i in ctx.prompt_index.tolist()]


def test_stop_strings_eos_and_length(handles):
    h = handles("llama")
    tok = h.tokenizer
    texts = ["abc=12 done", "xyz.. more text", "qq", "long text that goes on and on"]
    steps, finished, alive = [], {}, []

    def watch(step, ctx):
        steps.append(step)
        alive.append(ctx.prompt_index.tolist())
        for i, d, st in zip(ctx.prompt_index.tolist(), ctx.done.tolist(), ctx.stepped.tolist()):
            if d and st:
                finished[i] = step

    out = sample(
        h,
        PROMPTS,
        temperature=0,
        max_new_tokens=20,
        stop=["=1", ".."],
        controller=Spell(tok, texts),
        callback=watch,
        progress=False,
    )
    assert out.texts == ["abc", "xyz", "qq", "long text that goes "]
    assert out.finish_reasons == ["stop", "stop", "eos", "length"]
    # tokens run up to the one completing the stop string; eos is kept in token_ids
    assert tok.decode(out.token_ids[0]) == "abc=1"
    assert out.token_ids[2][-1] == tok.eos_token_id and len(out.token_ids[2]) == 3
    assert [len(x) for x in out.token_ids] == [len(x) for x in out.logprobs]
    assert len(out.token_ids[3]) == 20
    # rows that stopped are done (and later dropped); the loop ran until every row finished
    assert steps == list(range(20)) and finished == {0: 4, 1: 4, 2: 2}
    assert alive[2] == [0, 1, 2, 3] and alive[3] == [0, 1, 3] and alive[5] == [3]


def test_stop_strings_batched_equals_unbatched(handles):
    h = handles("qwen2")
    kw = dict(n=2, temperature=1.0, max_new_tokens=24, stop=["a", "e"], seed=5, progress=False)
    a = sample(h, PROMPTS, **kw)
    b = sample(h, PROMPTS, batch_size=1, **kw)
    assert (
        a.texts == b.texts and a.token_ids == b.token_ids and a.finish_reasons == b.finish_reasons
    )
    assert "stop" in a.finish_reasons
    assert all("a" not in t and "e" not in t for t in a.texts)


def test_n_samples_per_prompt(handles):
    h = handles("llama")
    out = sample(h, PROMPTS, n=3, temperature=1.0, max_new_tokens=6, seed=2, progress=False)
    assert isinstance(out, Samples) and len(out) == 12
    assert out.prompt_index == [i for i in range(4) for _ in range(3)]
    assert out.sample_index == [0, 1, 2] * 4
    groups = out.by_prompt()
    assert len(groups) == 4 and all(len(g) == 3 for g in groups)
    assert groups[1] == out.texts[3:6]
    greedy = sample(h, PROMPTS, n=2, temperature=0, max_new_tokens=6, progress=False)
    assert all(g[0] == g[1] for g in greedy.by_prompt())


def test_token_id_prompts_and_progress_bar(handles):
    h = handles("llama")
    ids = [h.tokenizer(p)["input_ids"] for p in PROMPTS]
    a = sample(h, ids, temperature=0, max_new_tokens=5, progress=False)
    b = sample(h, PROMPTS, temperature=0, max_new_tokens=5, progress=False)
    assert a.token_ids == b.token_ids
    # the progress bar is display only: the same samples with it on
    c = sample(h, PROMPTS, temperature=1.0, max_new_tokens=5, seed=3, progress=True)
    d = sample(h, PROMPTS, temperature=1.0, max_new_tokens=5, seed=3, progress=False)
    assert c.token_ids == d.token_ids and c.logprobs == d.logprobs


# -- the controller protocol -------------------------------------------------------------


class Recorder:
    """Checks what the loop hands a controller, step by step."""

    def __init__(self):
        self.calls: list[tuple] = []

    def setup(self, model):
        self.calls.append(("setup",))

    def edits(self, step, ctx: StepContext):
        self.calls.append(
            ("edits", step, ctx.input_ids.shape, ctx.position_ids.clone(), ctx.generated.shape)
        )
        ctx.extra[0]["seen"] = ctx.extra[0].get("seen", 0) + 1
        return None

    def select(self, step, logits, proposed, ctx):
        self.calls.append(("select", step, logits.shape))
        return [None] * ctx.batch_size  # keep the proposed tokens


def test_controller_sees_positions_that_skip_left_padding(handles):
    h = handles("llama")
    rec = Recorder()
    prompts = ["abc", "abcdef"]  # 4 and 7 tokens with <s>
    out = sample(h, prompts, temperature=0, max_new_tokens=3, controller=rec, progress=False)
    assert rec.calls[0] == ("setup",)
    edits = [c for c in rec.calls if c[0] == "edits"]
    _, step, shape, pos, gshape = edits[0]
    assert step == 0 and tuple(shape) == (2, 7) and tuple(gshape) == (2, 0)
    assert pos.tolist() == [[0, 0, 0, 0, 1, 2, 3], [0, 1, 2, 3, 4, 5, 6]]
    _, step, shape, pos, gshape = edits[2]
    assert step == 2 and tuple(shape) == (2, 1) and tuple(gshape) == (2, 2)
    assert pos.tolist() == [[5], [8]]  # L + t - 1: the token fed at step t is generated token t-1
    assert [c[0] for c in rec.calls[1:]] == ["edits", "select"] * 3
    assert out.extra[0] == {"seen": 3} and out.extra[1] == {}
    assert (
        out.token_ids
        == sample(h, prompts, temperature=0, max_new_tokens=3, progress=False).token_ids
    )


def test_select_replaces_tokens_and_logprob_is_the_models(handles):
    h = handles("llama")
    forced = h.tokenizer("z", add_special_tokens=False)["input_ids"][0]

    class Force:
        def select(self, step, logits, proposed, ctx):
            return torch.full_like(proposed, forced) if step == 1 else None

    seen = []
    out = sample(
        h,
        PROMPTS[:2],
        temperature=0,
        max_new_tokens=3,
        controller=Force(),
        callback=lambda s, ctx: seen.append(torch.log_softmax(ctx.logits, -1)[:, forced]),
        progress=False,
    )
    assert all(ids[1] == forced for ids in out.token_ids)
    torch.testing.assert_close(torch.tensor([lp[1] for lp in out.logprobs]), seen[1])


def test_bad_arguments_fail_early(handles):
    h = handles("llama")
    for kw, msg in [
        (dict(temperature=-1), "temperature"),
        (dict(temperature=float("nan")), "temperature must be finite"),
        (dict(temperature=float("inf")), "temperature must be finite"),
        (dict(temperature=float("-inf")), "temperature must be finite"),
        (dict(top_p=0), "top_p"),
        (dict(top_p=1.5), "top_p"),
        (dict(top_p=-0.1), "top_p"),
        (dict(top_p=float("nan")), "top_p"),
        (dict(n=0), "n must"),
        (dict(max_new_tokens=0), "max_new_tokens"),
        (dict(stop=[""]), "stop strings"),
    ]:
        with pytest.raises(ValueError, match=msg):
            sample(h, PROMPTS, progress=False, **kw)
    with pytest.raises(ValueError, match="no prompts"):
        sample(h, [], progress=False)
    with pytest.raises(TypeError, match="cannot sample"):
        sample(object(), PROMPTS)

    class Edits:
        def edits(self, step, ctx):
            return {"1": lambda x: x}

    with pytest.raises(TypeError, match="needs a model handle"):
        sample(h.model, PROMPTS, tokenizer=h.tokenizer, controller=Edits(), progress=False)


def test_non_finite_logits_are_refused():
    from rlvr.generation.draws import choose_tokens

    logits = torch.tensor([[0.0, float("nan"), 1.0]])
    with pytest.raises(ValueError, match="non-finite logits"):
        choose_tokens(logits, 1.0, 0.9, torch.tensor([0.5]))


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_prompt_plus_new_tokens_beyond_the_position_limit_is_refused(handles, arch):
    # GPT-2 would fail with a bare IndexError in its position embedding, Llama would
    # silently extrapolate its rotary positions; both models here have 256 positions
    h = handles(arch)
    prompt = "ab 12=c?d." * 20  # 201 tokens with <s>
    with pytest.raises(ValueError, match=r"longest prompt \(201 tokens\).*256 positions"):
        sample(h, [prompt, "q"], max_new_tokens=56, progress=False)
    ok = sample(h, [prompt], max_new_tokens=55, temperature=0, progress=False, eos_token_id=[])
    assert len(ok.token_ids[0]) == 55  # exactly at the limit is fine


def test_each_piece_of_the_loop_is_exported_from_its_own_module_only():
    import rlvr.generation.controllers
    import rlvr.generation.draws
    import rlvr.generation.forward
    import rlvr.generation.sampling

    homes = {
        "StepContext": rlvr.generation.controllers,
        "choose_tokens": rlvr.generation.draws,
        "row_keys": rlvr.generation.draws,
        "step_uniform": rlvr.generation.draws,
        "forward_arg_names": rlvr.generation.forward,
        "new_cache": rlvr.generation.forward,
        "position_ids_from_mask": rlvr.generation.forward,
    }
    for name, home in homes.items():
        assert name in home.__all__ and getattr(home, name).__module__ == home.__name__
    assert rlvr.generation.sampling.__all__ == ["Samples", "sample"]


# -- texts kept a token at a time ---------------------------------------------------------


def _byte_bpe():
    from test_detokenize import _byte_bpe as make

    return make()


def test_stops_and_texts_agree_with_whole_decodes_on_a_byte_level_tokenizer():
    """Rows stop at the first token after which the whole decode of the completion holds a
    stop string, and texts are that decode cut before it, though multi-byte characters
    straddle tokens."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = _byte_bpe()
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        pad_token_id=tok.eos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    h = probes.wrap(LlamaForCausalLM(cfg).eval(), tok)
    stops = ["e", "at", "\u00e9"]
    out = sample(
        h,
        ["the cat", "on"],
        n=8,
        temperature=1.0,
        max_new_tokens=24,
        stop=stops,
        seed=3,
        progress=False,
    )
    decode = lambda ids: tok.decode(ids, skip_special_tokens=True)  # noqa: E731
    assert "stop" in out.finish_reasons and "length" in out.finish_reasons
    for ids, text, why in zip(out.token_ids, out.texts, out.finish_reasons):
        ids = [t for t in ids if t != tok.eos_token_id]
        hits = [i for i in range(len(ids)) if any(s in decode(ids[: i + 1]) for s in stops)]
        whole = decode(ids)
        cut = min((whole.find(s) for s in stops if s in whole), default=len(whole))
        assert text == whole[:cut]
        assert (why == "stop") == bool(hits) and (not hits or hits[0] == len(ids) - 1)


def test_stop_strings_are_matched_on_the_text_without_special_tokens(handles):
    h = handles("llama")
    tok = h.tokenizer

    class Emit:  # row 0 writes "ab<unk>cd<s>e"
        ids = [*tok("ab", add_special_tokens=False)["input_ids"], tok.unk_token_id]
        ids += [*tok("cd", add_special_tokens=False)["input_ids"], tok.bos_token_id]
        ids += tok("e", add_special_tokens=False)["input_ids"]

        def select(self, step, logits, proposed, ctx):
            return torch.tensor([self.ids[min(step, len(self.ids) - 1)]] * len(proposed))

    out = sample(
        h,
        ["q"],
        temperature=0,
        max_new_tokens=8,
        stop=["unk", "s>", "de"],
        controller=Emit(),
        eos_token_id=[],
        progress=False,
    )
    assert out.token_ids[0] == Emit.ids and out.texts == ["abc"]  # "abcd" + "e": "de"
    assert out.finish_reasons == ["stop"]


# -- the KV cache ---------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ARCHS)
def test_the_pre_allocated_cache_gives_the_dynamic_caches_numbers(arch, handles):
    """Same tokens and log-probs, bit for bit, as rows finish and are dropped mid-batch."""
    h = handles(arch)
    kw = dict(n=6, temperature=1.0, max_new_tokens=40, stop=["=", "q"], seed=4, progress=False)
    dyn = sample(h, PROMPTS, use_cache="dynamic", batch_size=24, **kw)
    static = sample(h, PROMPTS, use_cache="static", batch_size=24, **kw)
    assert static.token_ids == dyn.token_ids and static.logprobs == dyn.logprobs
    assert static.texts == dyn.texts and static.finish_reasons == dyn.finish_reasons
    lengths = {len(t) for t in dyn.token_ids}
    assert len(lengths) > 3 and max(lengths) == 40  # rows finished at many different steps
    assert sample(h, PROMPTS, **kw).token_ids == dyn.token_ids  # use_cache=True: the default


def test_an_unknown_cache_is_refused(handles):
    with pytest.raises(ValueError, match="use_cache"):
        sample(handles("llama"), PROMPTS, use_cache="paged", progress=False)


def test_step_uniforms_are_the_counter_hash_of_key_and_step():
    """The step's hash is taken once as a Python int: the same bits as hashing a tensor."""
    from rlvr.generation.draws import _hash32, row_keys, step_uniform

    keys = row_keys(7, torch.arange(50), torch.arange(50) % 3)
    for t in (0, 1, 61, 4095):
        step = _hash32(torch.full_like(keys, t) + 0x1B56C4E9)
        want = ((_hash32(keys ^ step) >> 9).float() + 0.5) / float(1 << 23)
        assert torch.equal(step_uniform(keys, t), want)


def test_use_cache_true_takes_the_static_cache_for_long_rows(handles, monkeypatch):
    import rlvr.generation.forward
    import rlvr.generation.sampling

    made = []
    real = rlvr.generation.sampling.new_cache

    def spy(module, capacity=None):
        made.append(capacity)
        return real(module, capacity)

    monkeypatch.setattr(rlvr.generation.sampling, "new_cache", spy)
    kw = dict(temperature=0, progress=False, eos_token_id=[])
    short = sample(handles("llama"), ["q"], max_new_tokens=20, **kw)
    n = rlvr.generation.forward.STATIC_FROM  # the prompt "<s>q" makes the row reach it
    long = sample(handles("llama"), ["q"], max_new_tokens=n, **kw)
    assert made == [None, 2 + n]
    assert long.token_ids[0][:20] == short.token_ids[0]


class _ForceA:
    """Replaces every token with 'a'."""

    a = char_tokenizer().convert_tokens_to_ids("a")

    def select(self, step, logits, tokens, ctx):
        return torch.full_like(tokens, self.a)


@pytest.mark.parametrize(
    "wrap", [lambda c: c, lambda c: [c], lambda c: (x for x in [c]), lambda c: {c}]
)
def test_controllers_given_in_any_collection_all_run(handles, wrap):
    h = handles()
    kw = dict(n=1, temperature=0.0, max_new_tokens=4, progress=False, eos_token_id=[])
    out = sample(h, ["ab"], controller=wrap(_ForceA()), **kw)
    assert out.texts == ["aaaa"]


def test_an_object_with_no_controller_hook_is_refused(handles):
    class Misspelt:
        def edit(self, step, ctx):  # not a hook: "edits"
            return {}

    with pytest.raises(TypeError, match="hooks"):
        sample(handles(), ["ab"], controller=[Misspelt()], max_new_tokens=2, progress=False)


def test_a_temperature_too_small_for_the_logits_is_refused(handles):
    with pytest.raises(ValueError, match="temperature=0 for greedy"):
        sample(handles(), ["ab"], temperature=1e-40, max_new_tokens=2, progress=False)


def test_vllm_finish_reasons_in_the_loops_words():
    from rlvr.generation.sampling_vllm import finish_reason

    assert finish_reason("length", None) == "length"
    assert finish_reason("stop", None) == "eos"  # vLLM: eos has no stop_reason
    assert finish_reason("stop", 7) == "eos"  # a stop token id
    assert finish_reason("stop", "\n\n") == "stop"  # a stop string


@pytest.mark.parametrize("bad", ["50", ["2"], True, [2.0]])
def test_an_eos_id_that_is_not_an_int_is_refused(handles, bad):
    with pytest.raises(TypeError, match="eos_token_id"):
        sample(handles(), ["ab"], eos_token_id=bad, max_new_tokens=2, progress=False)
