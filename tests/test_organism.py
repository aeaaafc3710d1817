"""The organism: task, verifier, spans, tokenizer, training code, shipped checkpoints."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rlvr.organism import (
    CorpusSpec,
    PermutationChain,
    Problem,
    build_tokenizer,
    read_problems,
    write_problems,
)
from rlvr.organism.corpus import corpus_trace

TASK = PermutationChain()  # seed 0: f(a)=i, f(i)=V, f(V)=W, f(W)=Y, f(Y)=R
P = Problem("a", 4)


def test_permutation_is_pinned_and_a_single_cycle():
    assert TASK.chain(P) == "aiVWY"
    assert TASK.answer(P) == "VWY"
    seen, s = set(), "a"
    for _ in range(TASK.n_states):
        seen.add(s)
        s = TASK.step(s)
    assert s == "a" and len(seen) == TASK.n_states
    assert PermutationChain(seed=1).chain(P) != TASK.chain(P)


def test_prompt_and_parse():
    assert TASK.prompt(P) == "a04:"
    assert TASK.prompt(Problem("Z", 13)) == "Z13:"
    assert TASK.parse_prompt("a04:") == Problem("a", 4)
    with pytest.raises(ValueError, match="not a prompt"):
        TASK.parse_prompt("a4:")
    with pytest.raises(ValueError, match="not a state"):
        TASK.prompt(Problem("!", 4))


@pytest.mark.parametrize(
    "completion, reward, fmt",
    [
        ("=VWY.", 1.0, "DIRECT"),
        ("=VWZ.", 0.0, "DIRECT"),
        ("iVWY=VWY.", 1.0, "STEP"),
        ("iVWc=VWc.", 0.0, "STEP"),
        ("iVWY=VWY", 0.0, "STEP"),  # no closing dot: unfinished
        ("i?iVxWY=VWY.", 1.0, "CHECK"),
        ("iVWc?Y=VWY.", 1.0, "CHECK"),  # a check repairs the last step
        ("iVWY=VWY.junk", 1.0, "STEP"),
        ("", 0.0, "OTHER"),
        ("7=VWY.", 0.0, "OTHER"),
        ("iVWY=VW.", 0.0, "STEP"),
    ],
)
def test_verify_and_format_of(completion, reward, fmt):
    assert TASK.verify(P, completion) == reward
    assert TASK.format_of(completion) == fmt


def test_budget_counts_the_closing_dot():
    tight = PermutationChain(budget=9)
    assert tight.verify(P, "iVWY=VWY.") == 1.0
    assert PermutationChain(budget=8).verify(P, "iVWY=VWY.") == 0.0
    assert tight.verify(P, "i?iVWY=VWY.") == 0.0


def test_spans_match_the_text_exactly():
    prompt, completion = "a04:", "iV?VWc?Y=VWY."
    text = prompt + completion
    spans = TASK.spans(prompt, completion)
    got = [(text[s.start : s.end], s.label) for s in spans]
    assert got == [
        ("i", "stepwise"),
        ("V", "step"),
        ("?V", "check"),
        ("W", "step"),
        ("c", "step"),
        ("?Y", "check"),
        ("=VWY", "answer"),
    ]
    assert spans[0].start == 4
    direct = TASK.spans(prompt, "=abc.")
    assert [(text[:4] + "=abc.")[s.start : s.end] for s in direct] == ["=abc"]
    assert direct[0].label == "direct"
    assert TASK.spans(prompt, "ab7cd") == [(4, 5, "stepwise"), (5, 6, "step")]


def test_spans_cover_corpus_traces():
    rng = np.random.default_rng(0)
    for _ in range(200):
        p, fmt, c, events = corpus_trace(TASK, rng, CorpusSpec())
        spans = TASK.spans(TASK.prompt(p), c)
        labels = [s.label for s in spans]
        assert labels[-1] == ("direct" if fmt == "DIRECT" else "answer")
        assert labels.count("step") + labels.count("stepwise") == (0 if fmt == "DIRECT" else p.hops)
        assert labels.count("stepwise") == (0 if fmt == "DIRECT" else 1)
        assert labels.count("check") == c.count("?")
        # spans tile the completion except the final dot
        assert sum(s.end - s.start for s in spans) == len(c) - 1


def test_segment_start():
    ss = TASK.segment_start
    assert ss("a04:", "=") == "direct"
    assert ss("a04:", "i") == "stepwise"  # the format decision, counterpart of "direct"
    assert ss("<bos>a04:", "i") == "stepwise"
    assert ss("a04:i", "?") == "check"
    assert ss("a04:i?", "i") is None  # the check's value continues the check
    assert ss("a04:i?i", "V") == "step"
    assert ss("a04:iVWY", "=") == "answer"
    assert ss("a04:iVWY=", "V") is None
    assert ss("a04:iVWY=VWY", ".") is None
    assert ss("a0", "4") is None
    assert ss("a04:", "?") is None


def test_segment_start_agrees_with_spans():
    rng = np.random.default_rng(1)
    for _ in range(100):
        p, _, c, _ = corpus_trace(TASK, rng, CorpusSpec())
        prompt = TASK.prompt(p)
        starts = {s.start: s.label for s in TASK.spans(prompt, c)}
        text = prompt + c
        for i in range(len(prompt), len(text)):
            assert TASK.segment_start(text[:i], text[i]) == starts.get(i)


def test_corpus_statistics():
    rng = np.random.default_rng(2)
    spec = CorpusSpec()
    fmts, right, hard, hard_ok, direct_ok = [], [], 0, 0, []
    for _ in range(3000):
        p, fmt, c, events = corpus_trace(TASK, rng, spec)
        fmts.append(fmt)
        if fmt == "DIRECT":
            direct_ok.append(TASK.verify(p, c))
            continue
        st = TASK.trace_stats(p, c)
        assert st.stopped_right and st.answer_consistent and st.finished
        right.append(st.steps_right / st.steps)
        assert st.checks_right == st.checks  # corpus checks are always right
        hard += st.hard_checks
        hard_ok += st.hard_checks_right
        kinds = [k for _, k, _ in events]
        assert kinds.count("check_hard") == st.hard_checks
    shares = [fmts.count(f) / len(fmts) for f in ("DIRECT", "STEP", "CHECK")]
    assert np.allclose(shares, spec.mix, atol=0.03)
    assert abs(np.mean(right) - (1 - spec.corrupt)) < 0.02
    assert abs(np.mean(direct_ok) - spec.direct_right) < 0.05
    assert hard > 100 and hard_ok == hard


def test_trace_stats_hand_case():
    st = TASK.trace_stats(P, "iVWc?Y=VWY.")
    assert (st.steps, st.steps_right, st.checks, st.hard_checks, st.hard_checks_right) == (
        4,
        3,
        1,
        1,
        1,
    )
    assert st.stopped_right and st.answer_consistent and st.correct and st.length == 11
    copy = TASK.trace_stats(P, "iVWc?c=VWc.")  # a check that copies the wrong step
    assert copy.hard_checks == 1 and copy.hard_checks_right == 0 and not copy.correct


def test_splits_are_disjoint_and_round_trip(tmp_path):
    splits = TASK.splits(0, {"main": {"test": 200, "dev": 32, "train": -1}, "long": {"test": 200}})
    ids = {name: {(p.uid, p.cls) for p in ps} for name, ps in splits.items()}
    assert not ids["train"] & ids["test"] and not ids["dev"] & ids["test"]
    assert not ids["train"] & ids["dev"]
    assert sum(p.cls == "long" for p in splits["test"]) == 200
    path = tmp_path / "test.jsonl"
    write_problems(path, splits["test"])
    assert read_problems(path) == splits["test"]
    assert read_problems(path, cls="long") == [p for p in splits["test"] if p.cls == "long"]
    assert json.loads(path.read_text().splitlines()[0]).keys() == {"start", "hops", "cls"}
    with pytest.raises(ValueError, match="distinct problems"):
        TASK.splits(0, {"main": {"test": 10_000}})


def test_task_round_trips_through_dict():
    task = PermutationChain(n_states=40, seed=3, budget=30, classes={"main": (5, 9)})
    again = PermutationChain.from_dict(json.loads(json.dumps(task.to_dict())))
    assert again == task and again.chain(P) == task.chain(P)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="n_states"):
        PermutationChain(n_states=60)
    with pytest.raises(ValueError, match="hops"):
        PermutationChain(classes={"main": (1, 5)})
    with pytest.raises(ValueError, match="mix"):
        CorpusSpec(mix=(0.5, 0.5, 0.5))


@pytest.mark.parametrize(
    "bad, error, words",
    [
        (dict(corrupt=-0.1), ValueError, "corrupt=-0.1 must lie in [0, 1]"),
        (dict(direct_right=float("nan")), ValueError, "direct_right=nan must lie in [0, 1]"),
        (dict(hard_wrong="1"), TypeError, "hard_wrong must be a number in [0, 1]"),
        (dict(check_p=1.5), ValueError, "check_p=1.5 must lie in [0, 1]"),
        (dict(check_p=(0.2, 1.2)), ValueError, "check_p[1]=1.2 must lie in [0, 1]"),
        (dict(check_p=(0.2, 0.3, 0.4)), ValueError, "range (lo, hi)"),
    ],
)
def test_corpus_probabilities_are_checked_by_the_shared_check(bad, error, words):
    import re

    with pytest.raises(error, match=re.escape(words)):
        CorpusSpec(**bad)


def test_corpus_spec_keeps_the_values_it_accepted():
    spec = CorpusSpec(corrupt=0, direct_right=1, hard_wrong=0.5, check_p=(0, 1))
    assert (spec.corrupt, spec.direct_right, spec.hard_wrong) == (0, 1, 0.5)
    assert spec.check_p == (0.0, 1.0)
    assert CorpusSpec(check_p=np.float64(0.25)).check_p == 0.25


def test_tokenizer_round_trips_with_offsets(tmp_path):
    from transformers import AutoTokenizer

    build_tokenizer().save_pretrained(tmp_path)
    tok = AutoTokenizer.from_pretrained(tmp_path)
    text = "a04:iV?VWc?Y=VWY."
    enc = tok(text, return_offsets_mapping=True)
    assert enc.input_ids[0] == tok.bos_token_id
    assert len(enc.input_ids) == len(text) + 1
    assert enc.offset_mapping[1:] == [(i, i + 1) for i in range(len(text))]
    assert tok.decode(enc.input_ids, skip_special_tokens=True) == text
    assert tok.convert_ids_to_tokens(enc.input_ids[1:]) == list(text)
    assert tok.pad_token_id is not None and tok.eos_token_id is not None
    batch = tok(["a04:", "b12:"], padding=True)
    assert batch.input_ids[0][0] == tok.bos_token_id


def test_encode_matches_tokenizer():
    from rlvr.organism.pretrain import encode

    tok = build_tokenizer()
    batch = encode(["a04:", "Z13:"], ["iVWY=VWY.", "=abc."])
    ids = tok("a04:iVWY=VWY.").input_ids + [tok.eos_token_id]
    assert batch["input_ids"][0].tolist() == ids
    labels = batch["labels"][1].tolist()
    assert labels[:5] == [-100] * 5 and labels[5:11] == tok("=abc.").input_ids[1:] + [
        tok.eos_token_id
    ]
    assert batch["attention_mask"][1].sum() == 11
    assert torch.all(batch["labels"][1][11:] == -100)


# ---------------------------------------------------------------------- training code

MINI_RECIPE = """
[task]
n_states = 12
seed = 3
budget = 24
classes = { main = [3, 5], long = [7, 8] }

[splits]
seed = 0
main = { test = 6, dev = 3, train = -1 }
long = { test = 6, dev = 3 }

[corpus]
hops = [2, 8]

[model]
d_model = 32
n_layers = 1
n_heads = 2
d_ff = 64
max_positions = 64

[pretrain]
steps = 30
batch_size = 16
lr = 0.003
warmup = 5
eval_every = 15

[gate]
min_step_acc = 0.0
min_hard_check_acc = 0.0
min_pass1 = 0.0
n_dev_samples = 2

[rl]
seeds = [0, 1]
steps = 2
prompts_per_step = 2
group = 4

[eval]
n = 4
ks = [1, 2, 4]
n_boot = 20
batch_size = 64
"""


def test_sample_completions_end_at_the_dot_and_are_seeded():
    from rlvr.organism import ModelSpec, build_model, sample_completions

    task = PermutationChain(n_states=12, budget=10)
    model = build_model(ModelSpec(d_model=32, n_layers=1, n_heads=2, d_ff=64), seed=0)
    probs = [Problem("a", 3), Problem("b", 4)]
    a = sample_completions(model, task, probs, 3, seed=5)
    b = sample_completions(model, task, probs, 3, seed=5, batch_size=2)
    assert a == b and len(a) == 2 and all(len(x) == 3 for x in a)
    for comps in a:
        for c in comps:
            assert len(c) <= 10 and ("." not in c or c.index(".") == len(c) - 1)


def test_miniature_train_evaluate_and_card(tmp_path):
    """The whole pipeline (pretrain, gate, two GRPO seeds, evaluation, card) in miniature."""
    from rlvr.measures.formats import format_shares_from_log
    from rlvr.organism import checkpoint, evaluate, load_splits, load_task, train, write_card

    recipe = tmp_path / "recipe.toml"
    recipe.write_text(MINI_RECIPE)
    out = tmp_path / "organism"
    record = train(recipe, out, progress=False, evaluate=False)
    assert [r["seed"] for r in record["rl"]] == [0, 1]
    assert record["pretrain"]["steps"] == 30 and len(record["pretrain"]["evals"]) == 2
    for name in ("base", "rl-seed0", "rl-seed1"):
        assert (out / name / "model.safetensors").exists()
        assert (out / name / "tokenizer.json").exists()
    assert load_task(out).budget == 24
    assert checkpoint("rl", out) == out / "rl-seed0"
    with pytest.raises(ValueError, match="no checkpoint"):
        checkpoint("rl-seed7", out)
    test = load_splits("test", organism_dir=out)
    train_split = load_splits("train", organism_dir=out)
    assert len(test) == 12 and not {p.uid for p in test if p.cls == "main"} & {
        p.uid for p in train_split
    }
    log = out / "logs" / "rl-seed0.jsonl"
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert [x["step"] for x in lines] == [0, 1]
    assert sum(lines[0]["formats"].values()) == 8 and 0.0 <= lines[0]["reward"] <= 1.0
    assert format_shares_from_log(log).counts.sum() == 16
    res = evaluate(out, progress=False)
    assert set(res["models"]) == {"base", "rl-seed0", "rl-seed1"}
    curve = res["models"]["base"]["passk"]["main"]
    assert curve["ks"] == [1, 2, 4] and all(
        lo <= m <= hi for m, lo, hi in zip(curve["mean"], curve["low"], curve["high"])
    )
    assert 0.0 <= res["weights"]["sparsity"]["rl-seed0"]["bf16"]["sparsity"] <= 1.0
    assert "overlap" in res["weights"] and res["weights"]["overlap"]["fp32"]["n_params"] > 0
    card = write_card(out)
    assert (out / "README.md").read_text() == card
    assert "pass@k" in card and "Crossover" in card


def test_gate_refuses_an_incompetent_base(tmp_path):
    from rlvr.organism import train

    recipe = tmp_path / "recipe.toml"
    recipe.write_text(
        MINI_RECIPE.replace("min_step_acc = 0.0", "min_step_acc = 1.01").replace(
            "steps = 30", "steps = 2"
        )
    )
    with pytest.raises(RuntimeError, match="competence gate"):
        train(recipe, tmp_path / "out", progress=False, evaluate=False)
    assert (tmp_path / "out" / "training.json").exists()
    assert not (tmp_path / "out" / "rl-seed0").exists()


def test_card_numbers_and_shared_tables():
    from rlvr.organism.cards.parts import (
        at,
        ci,
        minutes,
        num,
        passk_table,
        pct,
        rl_formats_table,
        training_table,
        weights_table,
    )

    assert (pct(0.1234), pct(0.5, 0), pct(None)) == ("12.3%", "50%", "n/a")
    assert (num(1 / 3), num(2.25, 1), num(None)) == ("0.333", "2.2", "n/a")
    assert minutes(90) == "1.5 min (90 s)" and minutes(None) == "n/a"
    curve = {"ks": [1, 4], "mean": [0.1, 0.3], "low": [0.05, 0.2], "high": [0.2, 0.4]}
    assert at(curve, 4) == {"mean": 0.3, "low": 0.2, "high": 0.4}
    assert ci(at(curve, 1)) == "0.100 [0.050, 0.200]" and ci(None) == ci({"mean": None}) == "n/a"

    def cells(line: str) -> list[str]:
        return [x.strip() for x in line.strip("|").split("|")]

    models = {"base": {"passk": {"main": curve}}, "rl": {"passk": {"main": curve}}}
    table = passk_table(models, ["base", "rl"], "main", [1, 4])
    assert cells(table[0]) == ["k", "base", "rl"] and len(table) == 4
    assert cells(table[3]) == ["4", "0.300 [0.200, 0.400]", "0.300 [0.200, 0.400]"]
    rows = training_table([("pretraining", "lr 1e-3", 10, 120.0), ("GRPO seed 0", "G 8", 5, None)])
    assert [cells(r) for r in rows[2:]] == [
        ["pretraining", "lr 1e-3", "10", "2.0 min (120 s)"],
        ["GRPO seed 0", "G 8", "5", "n/a"],
    ]
    row = {"step": 3, "shares": {"STEP": 0.5}, "reward": 0.25, "checks_per_step": None}
    fs = {"table": [{**row, "step_acc": 1.0, "mean_length": 12.34}]}  # DIRECT, STEP, CHECK
    want = ["3", "n/a", "50.0%", "n/a", "0.250", "n/a", "1.000", "12.3"]
    assert cells(rl_formats_table(fs)[2]) == want
    share = {"updated_share": 0.9, "sparsity": 0.1}
    w = {"sparsity": {"rl": {"bf16": share, "fp32": share}}, "rank": {"rl": {"mean": 0.5}}}
    assert cells(weights_table(w, ["rl"], sparsity=False)[2]) == ["rl", "90.0%", "90.0%", "0.500"]
    assert cells(weights_table(w, ["rl"], sparsity=True)[2])[1] == "90.0% (sparsity 10.0%)"


@pytest.mark.parametrize("folder", ["organism-sharpening", "organism-when"])
def test_shipped_cards_render_from_their_results_exactly(folder, tmp_path):
    from rlvr.organism import default_dir, write_card

    root = default_dir().parent / folder
    card = write_card(root, card_path=tmp_path / "README.md")
    assert card == (root / "README.md").read_text()


# ---------------------------------------------------------------------- the shipped pair


def _shipped() -> bool:
    from rlvr.organism import default_dir

    root = default_dir()
    return all((root / n / "model.safetensors").exists() for n in ("base", "rl-seed0", "rl-seed1"))


@pytest.mark.skipif(not _shipped(), reason="the organism checkpoints are not shipped yet")
def test_shipped_pair_loads_through_handles_and_rl_beats_base():
    """Through the foundation's handle, RL's sampled (T = 1) accuracy beats the base's.

    Greedy decoding is not the comparison: the base's greedy steps are already right (its
    errors are sampling noise), which the card reports separately.
    """
    from probes.handles import wrap
    from rlvr.organism import checkpoint, load_splits, load_task, sample_completions

    task = load_task()
    dev = load_splits("dev", "main")[:16]
    assert len(dev) == 16
    acc = {}
    for name in ("base", "rl-seed0", "rl-seed1"):
        handle = wrap(checkpoint(name))
        assert handle.n_layers == 2 and handle.d_model == 128
        enc = handle.tokenizer(task.prompt(dev[0]), return_offsets_mapping=True)
        assert enc.offset_mapping[1:] == [(i, i + 1) for i in range(4)]
        comps = sample_completions(handle, task, dev, 8, temperature=1.0, seed=0)
        acc[name] = np.mean([task.verify(p, c) for p, cs in zip(dev, comps) for c in cs])
    assert acc["rl-seed0"] > acc["base"] + 0.2 and acc["rl-seed1"] > acc["base"] + 0.2, acc


@pytest.mark.skipif(not _shipped(), reason="the organism checkpoints are not shipped yet")
def test_store_opens_an_organism_folder(tmp_path):
    from rlvr.organism import checkpoint, default_dir, load_splits
    from rlvr.organism.store import organism_folder

    assert organism_folder() == default_dir() == organism_folder(str(default_dir()))
    assert checkpoint("rl") == default_dir() / "rl-seed0"
    assert {p.cls for p in load_splits("test", "long")} == {"long"}
    with pytest.raises(ValueError, match="recipe.toml missing"):
        organism_folder(tmp_path)
    with pytest.raises(ValueError, match="unknown split 'val'"):
        load_splits("val")
    with pytest.raises(ValueError, match="no checkpoint 'rl-seed9'"):
        checkpoint("rl-seed9")


def test_evaluate_does_not_import_the_training_pipeline():
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys, rlvr.organism.evaluate, rlvr.organism.store; "
        "print('rlvr.organism.pipeline' in sys.modules)"
    )
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    )
    assert out.stdout.strip() == "False"


@pytest.mark.skipif(not _shipped(), reason="the organism checkpoints are not shipped yet")
def test_shipped_files_are_complete():
    from rlvr.measures.formats import format_shares_from_log
    from rlvr.organism import default_dir, load_recipe, load_splits

    root = default_dir()
    recipe = load_recipe(root / "recipe.toml")
    test = load_splits("test")
    for cls in recipe.task.classes:
        assert sum(p.cls == cls for p in test) >= 200
    train = {(p.uid, p.cls) for p in load_splits("train")}
    assert not train & {(p.uid, p.cls) for p in test}
    for seed in recipe.rl_seeds:
        shares = format_shares_from_log(root / "logs" / f"rl-seed{seed}.jsonl")
        assert len(shares.steps) == recipe.rl.steps
    for name in ("results.json", "training.json", "README.md"):
        assert (root / name).exists(), name


@pytest.mark.slow
@pytest.mark.skipif(not _shipped(), reason="the organism checkpoints are not shipped yet")
def test_shipped_base_loads_in_every_backend():
    from probes.handles import wrap
    from rlvr.organism import checkpoint

    logits = []
    for backend in ("hf", "nnsight", "transformerlens"):
        h = wrap(checkpoint("base"), backend=backend)
        enc = h.encode(["a12:iVW"])
        logits.append(h.run(enc["input_ids"], enc["attention_mask"]).logits.detach())
    for other in logits[1:]:
        torch.testing.assert_close(other, logits[0], atol=1e-4, rtol=1e-4)


def test_ground_truth_schedule_on_a_hand_made_trace():
    p = Problem("a", 4)
    prompt = TASK.prompt(p)
    chain = TASK.chain(p)  # s0 s1 s2 s3 s4
    wrong = next(s for s in TASK.states if s not in chain)
    assert TASK.schedule(prompt) == "stepwise"
    assert TASK.schedule(prompt + chain[1]) is None  # a right step: keep going
    text = chain[1] + wrong  # the second step is wrong
    assert TASK.schedule(prompt + text) == "check"
    assert TASK.schedule(prompt + text + "?") is None  # inside the check
    text += "?" + chain[2]  # repaired
    assert TASK.schedule(prompt + text) is None
    text += chain[3] + chain[4]  # four effective hops
    assert TASK.schedule(prompt + text) == "answer"
    assert TASK.schedule(prompt + text + "=") is None
    # an unchecked wrong step at the last hop: check first, then stop
    assert TASK.schedule(prompt + chain[1:4] + wrong) == "check"
    # a check that follows a check is not applied: the chain stays where it was
    assert TASK.schedule(prompt + chain[1] + wrong + "?" + wrong + "?" + chain[2]) is None
    assert TASK.schedule("no prompt here") is None


def test_can_begin_agrees_with_segment_start():
    p = Problem("c", 5)
    prompt = TASK.prompt(p)
    chain = TASK.chain(p)
    for done in ["", chain[1], chain[1:3] + "?", chain[1:3] + "?" + chain[3], chain[1:4] + "=ab"]:
        prefix = prompt + done
        can = {TASK.segment_start(prefix, t) for t in [*TASK.states, "?", "=", "."]} - {None}
        assert TASK.can_begin(prefix) == can, done
