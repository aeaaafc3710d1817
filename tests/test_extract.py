"""Labelled spans, extraction and the resumable activation store."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import probes
from probes import REST, LabeledTrace, Site


def make_traces(n: int = 24, seed: int = 0) -> list[LabeledTrace]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        head = "".join(rng.choice("abcdef ") for _ in range(rng.randint(3, 12)))
        body = "".join(rng.choice("xyz") for _ in range(rng.randint(2, 6)))
        text = f"{head}={body}?{rng.choice('abc')}."
        eq, q = text.index("="), text.index("?")
        out.append(LabeledTrace(text, [(eq, q, "step"), (q, q + 2, "check")], scored_from=2))
    return out


def _ref_hidden(h, text):
    ids = h.tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        return h.model(**ids, output_hidden_states=True).hidden_states


def test_alignment_with_char_tokenizer(model_dir):
    h = probes.wrap(model_dir("llama"))
    tr = LabeledTrace("ab=xy?c.", [(2, 5, "step"), (5, 7, "check")])
    al = probes.align(tr, h.tokenizer)
    # BOS is prepended, so character i is token i + 1
    assert al.input_ids[0] == h.tokenizer.bos_token_id
    assert [(s.start, s.end, s.label) for s in al.spans] == [(3, 6, "step"), (6, 8, "check")]


def _word_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<unk>": 1, "Wait": 2, ",": 3, "check": 4, "it": 5, "So": 6, "x": 7}
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>", unk_token="<unk>")


def test_alignment_snaps_whitespace_and_refuses_cuts():
    tok = _word_tokenizer()
    text = "So x Wait , check it"
    # span starting on the space before "Wait" snaps to the "Wait" token
    al = probes.align(LabeledTrace(text, [(4, 11, "backtracking")]), tok)
    assert [(s.start, s.end) for s in al.spans] == [(2, 4)]
    with pytest.raises(ValueError, match="cuts through a token"):
        probes.align(LabeledTrace(text, [(6, 10, "backtracking")]), tok)  # "it" of "Wait"


def test_span_errors():
    with pytest.raises(ValueError, match="outside the trace"):
        LabeledTrace("abc", [(1, 9, "x")])
    with pytest.raises(ValueError, match="empty or negative"):
        LabeledTrace("abc", [(2, 2, "x")])
    with pytest.raises(ValueError, match="empty trace"):
        LabeledTrace("", [])

    class SlowTokenizer:
        is_fast = False

    with pytest.raises(TypeError, match="no character offsets"):
        probes.align(LabeledTrace("abc", [(0, 1, "x")]), SlowTokenizer())


@pytest.mark.parametrize("pooling", probes.POOLINGS)
def test_pooling_matches_manual_computation(pooling, model_dir):
    h = probes.wrap(model_dir("llama"))
    tr = LabeledTrace("ab cd=xyz?a.", [(5, 9, "step"), (9, 11, "check")], scored_from=3)
    t = probes.extract(h, [tr], [Site(1)], pooling, k=2, progress=False)
    hs = _ref_hidden(h, tr.text)[2][0]  # resid_post of layer 1; token = char + 1 (BOS)
    step = {
        "decision": hs[5],
        "mean": hs[6:10].mean(0),
        "mean_first_k": hs[6:8].mean(0),
        "last": hs[9],
    }[pooling]
    torch.testing.assert_close(t.mean(Site(1), "step"), step)
    used = {5, 9} if pooling == "decision" else set(range(6, 12))
    rest = [i for i in range(4, len(tr.text) + 1) if i not in used]
    torch.testing.assert_close(t.mean(Site(1), REST), hs[rest].mean(0))


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_batched_equals_unbatched(arch, model_dir):
    h = probes.wrap(model_dir(arch))
    traces = make_traces(10)
    sites = [Site(0), Site(2, "resid_pre")]
    a = probes.extract(h, traces, sites, "mean", batch_size=1, progress=False)
    b = probes.extract(h, traces, sites, "mean", batch_size=4, progress=False)
    assert a.labels == b.labels and torch.equal(a.trace_ids, b.trace_ids)
    for s in sites:
        torch.testing.assert_close(a.acts[s], b.acts[s], atol=1e-5, rtol=1e-4)


def test_extract_many_labels_one_pass_and_label_filter(model_dir):
    h = probes.wrap(model_dir("llama"))
    traces = make_traces(6)
    t = probes.extract(h, traces, [Site(1)], progress=False)
    assert t.label_names == ["check", "step"]
    assert len(t) == 6 * 3  # two spans + one REST row per trace
    only = probes.extract(h, traces, [Site(1)], labels=["check"], rest=False, progress=False)
    assert set(only.labels) == {"check"}
    torch.testing.assert_close(only.X(Site(1)), t.X(Site(1), "check"))


def test_extract_bad_inputs(model_dir):
    h = probes.wrap(model_dir("llama"))
    traces = make_traces(3)
    with pytest.raises(ValueError, match="no traces"):
        probes.extract(h, [], [Site(0)])
    with pytest.raises(ValueError, match=r"unknown label\(s\) \['verify'\]"):
        probes.extract(h, traces, [Site(0)], labels=["verify"])
    with pytest.raises(ValueError, match="layer 9 out of range"):
        probes.extract(h, traces, [Site(9)])
    with pytest.raises(ValueError, match="unknown pooling"):
        probes.extract(h, traces, [Site(0)], pooling="max")
    t = probes.extract(h, traces, [Site(0)], progress=False)
    with pytest.raises(ValueError, match="unknown label 'verify'"):
        t.mean(Site(0), "verify")
    with pytest.raises(ValueError, match="was not extracted"):
        t.X(Site(2))


def test_nan_activations_are_refused(model_dir):
    h = probes.wrap(model_dir("llama", seed=3))
    with torch.no_grad():
        h.layer_module(0).mlp.down_proj.weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite activations"):
        probes.extract(h, make_traces(2), [Site(1)], progress=False)


# -- the on-disk store ------------------------------------------------------------------


def test_duplicated_spans_are_refused_and_overlapping_ones_each_count():
    with pytest.raises(ValueError, match=r"span \[2, 5\) 'step' is given twice"):
        LabeledTrace("ab=xy?c.", [(2, 5, "step"), (5, 7, "check"), (2, 5, "step")])
    # the same tokens reached through whitespace: a duplicate too, found at alignment
    tok = _word_tokenizer()
    text = "So x Wait , check it"
    with pytest.raises(ValueError, match="covers the same tokens as another 'bt'"):
        probes.align(LabeledTrace(text, [(4, 9, "bt"), (5, 9, "bt")]), tok)
    # same range, other label: two rows, not a duplicate
    al = probes.align(LabeledTrace(text, [(5, 9, "bt"), (5, 9, "x")]), tok)
    assert [(s.start, s.end, s.label) for s in al.spans] == [(2, 3, "bt"), (2, 3, "x")]


def test_overlapping_spans_each_give_their_own_row(model_dir):
    h = probes.wrap(model_dir("llama"))
    text = "ab=xy?c."
    tr = LabeledTrace(text, [(2, 8, "step"), (5, 7, "check")], scored_from=2)  # nested
    t = probes.extract(h, [tr], [Site(1)], "mean", progress=False)
    assert t.labels == ["step", "check"]  # no REST: every scored position is in a span
    hs = _ref_hidden(h, text)[2][0]  # resid_post of layer 1; BOS shifts characters by 1
    torch.testing.assert_close(t.X(Site(1), "step")[0], hs[3:9].mean(0), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(t.X(Site(1), "check")[0], hs[6:8].mean(0), atol=1e-5, rtol=1e-5)


def test_a_bad_later_trace_fails_before_any_shard_is_written(model_dir, tmp_path):
    h = probes.wrap(model_dir("gpt2"))
    good = make_traces(9)
    cases = [
        # decision pooling needs a position before the span
        (LabeledTrace(token_ids=[5, 6, 7], spans=[(0, 2, "step")]), "trace 9: span 'step' starts"),
        (LabeledTrace(token_ids=[5, 999, 7], spans=[(1, 2, "step")]), "trace 9 has token id 999"),
        (LabeledTrace(token_ids=[5] * 300, spans=[(1, 2, "step")]), "trace 9 has 300 tokens"),
    ]
    for i, (bad, msg) in enumerate(cases):
        path = tmp_path / f"store{i}"
        with pytest.raises(ValueError, match=msg):
            probes.extract_to_store(h, good + [bad], [Site(1)], path, shard_size=2, progress=False)
        assert not path.exists() or not any(path.iterdir())
        with pytest.raises(ValueError, match=msg):
            probes.extract(h, good + [bad], [Site(1)], progress=False)


def test_store_roundtrip_equals_in_memory(model_dir, tmp_path):
    h = probes.wrap(model_dir("llama"))
    traces = make_traces(11)
    mem = probes.extract(h, traces, [Site(1)], "mean", progress=False)
    store = probes.extract_to_store(
        h, traces, [Site(1)], tmp_path / "s", pooling="mean", shard_size=4, progress=False
    )
    disk = store.load()
    assert disk.labels == mem.labels and torch.equal(disk.trace_ids, mem.trace_ids)
    torch.testing.assert_close(disk.acts[Site(1)], mem.acts[Site(1)])
    m = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert m["complete"] and len(m["shards"]) == 3
    assert not [p for p in (tmp_path / "s").iterdir() if p.name.endswith(".tmp")]


def test_store_refuses_other_settings_and_corruption(model_dir, tmp_path):
    h = probes.wrap(model_dir("llama"))
    traces = make_traces(8)
    path = tmp_path / "s"
    probes.extract_to_store(h, traces, [Site(1)], path, shard_size=4, progress=False)
    with pytest.raises(ValueError, match="other settings.*pooling"):
        probes.extract_to_store(
            h, traces, [Site(1)], path, pooling="mean", shard_size=4, progress=False
        )
    shard = path / "shard-00001.safetensors"
    shard.write_bytes(shard.read_bytes()[:-10])  # truncate
    with pytest.raises(ValueError, match="corrupted or truncated"):
        probes.ActivationStore(path).load()
    # resuming recomputes the damaged shard and gives the full, correct result
    probes.extract_to_store(h, traces, [Site(1)], path, shard_size=4, progress=False)
    fresh = probes.extract(h, traces, [Site(1)], progress=False)
    torch.testing.assert_close(
        probes.ActivationStore(path).load().acts[Site(1)], fresh.acts[Site(1)]
    )
    (path / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="manifest .* is corrupted"):
        probes.ActivationStore(path).load()


CHILD = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, {tests!r})
    import probes
    from test_extract import make_traces
    real_replace = os.replace
    def replace(src, dst):
        # SIGKILL ourselves while the 4th shard is a finished temporary file, not yet in
        # place: 3 shards are written and listed, the 4th is lost mid-write
        if os.path.basename(dst) == "shard-00003.safetensors":
            os.kill(os.getpid(), signal.SIGKILL)
        return real_replace(src, dst)
    os.replace = replace
    probes.extract_to_store({model!r}, make_traces(40), [probes.Site(1)], {path!r}, pooling="mean",
                            shard_size=2, progress=False)
    """
)


def test_store_resumes_after_a_real_kill(model_dir, tmp_path, monkeypatch):
    model = str(model_dir("llama"))
    path = tmp_path / "store"
    script = CHILD.format(tests=str(Path(__file__).parent), model=model, path=str(path))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, timeout=300)
    assert proc.returncode == -signal.SIGKILL  # killed, not finished or failed
    manifest = path / "manifest.json"
    m = json.loads(manifest.read_text())
    assert not m["complete"], "the child finished before it could be killed"
    finished = {e["file"]: (path / e["file"]).stat().st_mtime_ns for e in m["shards"]}
    assert len(finished) == 3 and not (path / "shard-00003.safetensors").exists()
    assert any(p.name.startswith(".shard-00003") for p in path.iterdir())  # the half-done one

    import probes.store as store_mod

    calls = []
    real = store_mod.extract_aligned

    def counting(*a, **k):
        calls.append(k.get("trace_offset"))
        return real(*a, **k)

    monkeypatch.setattr(store_mod, "extract_aligned", counting)
    traces = make_traces(40)
    resumed = probes.extract_to_store(
        model, traces, [Site(1)], path, pooling="mean", shard_size=2, progress=False
    ).load()
    assert len(calls) == 20 - len(finished)  # finished shards were not recomputed
    for f, mtime in finished.items():
        assert (path / f).stat().st_mtime_ns == mtime
    full = probes.extract(model, traces, [Site(1)], "mean", progress=False)
    assert resumed.labels == full.labels
    torch.testing.assert_close(resumed.acts[Site(1)], full.acts[Site(1)])


def test_rest_rows_do_not_depend_on_the_label_filter(model_dir):
    h = probes.wrap(model_dir("llama"))
    traces = make_traces(4)
    for pooling in ("decision", "mean"):
        every = probes.extract(h, traces, [Site(1)], pooling, progress=False)
        some = probes.extract(h, traces, [Site(1)], pooling, labels=["step"], progress=False)
        torch.testing.assert_close(every.X(Site(1), REST), some.X(Site(1), REST))


def test_rest_never_includes_the_bos_token(model_dir):
    h = probes.wrap(model_dir("llama"))
    al = probes.align(LabeledTrace("ab=xy", [(2, 5, "step")]), h.tokenizer)
    assert al.input_ids[0] == h.tokenizer.bos_token_id and al.scored_from == 1


def test_labelled_traces_from_samples():
    from types import SimpleNamespace

    from rlvr.organism import PermutationChain, Problem

    task = PermutationChain()
    problems = [Problem("a", 4), Problem("i", 2)]
    samples = SimpleNamespace(
        texts=["iV?VWY=VWY.", ".", "=abc."], prompt_index=[0, 0, 1]
    )  # the second completion has no span: left out
    traces = probes.labelled_traces(task, problems, samples)
    assert [t.text for t in traces] == ["a04:iV?VWY=VWY.", "i02:=abc."]
    assert [t.scored_from for t in traces] == [4, 4]
    assert [(s.start, s.end, s.label) for s in traces[1].spans] == [(4, 8, "direct")]
    first = traces[0]
    assert [(first.text[s.start : s.end], s.label) for s in first.spans] == [
        ("i", "stepwise"),
        ("V", "step"),
        ("?V", "check"),
        ("W", "step"),
        ("Y", "step"),
        ("=VWY", "answer"),
    ]
