"""Organism 2 ("when"): hard states, the strict reward, the per-problem budget, the corpus,
the ground-truth schedule, the design checks, and the miniature retraining of its recipe."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rlvr.organism import CorpusSpec, PermutationChain, Problem, load_recipe
from rlvr.organism.corpus import corpus_trace
from rlvr.organism.tokenizer import vocab

ORG1 = PermutationChain()
TASK = PermutationChain(
    n_hard=14, check_slack=2, strict=True, classes={"main": (10, 16)}, budget=53
)
WHEN_DIR = Path(__file__).resolve().parents[1] / "data" / "organism-when"


def _problem_with(task: PermutationChain, n_hard_steps: int, hops: int = 6) -> Problem:
    """A problem whose true chain takes exactly ``n_hard_steps`` steps from hard states."""
    for s in task.states:
        p = Problem(s, hops)
        if task.n_hard_steps(p) == n_hard_steps:
            return p
    raise AssertionError("no such problem")


def _greedy_base_text(task: PermutationChain, p: Problem, check_at=()) -> str:
    """What a base that imitates the corpus's argmax writes: w(s) after a hard state, f(s)
    otherwise; ``?f(prev)`` after the steps whose index is in ``check_at``."""
    out, cur = "", p.start
    for i in range(p.hops):
        w = task.wrong_step(cur) if cur in task.hard_states else task.step(cur)
        out += w
        if i in check_at:
            out += "?" + task.step(cur)
            cur = task.step(cur)
        else:
            cur = w
    return out


def test_first_organism_is_unchanged():
    # the corpus of the default settings, pinned against the code before hard states existed
    rng = np.random.default_rng(123)
    h = hashlib.sha256()
    for _ in range(300):
        p, f, c, ev = corpus_trace(ORG1, rng, CorpusSpec())
        h.update(f"{p.uid}{f}{c}{ev}".encode())
    assert h.hexdigest()[:16] == "e79283d00f01b06a"
    assert ORG1.hard_states == "" and ORG1.budget_of(Problem("a", 12)) == ORG1.budget
    assert set(ORG1.to_dict()) == {"n_states", "seed", "budget", "classes"}


def test_hard_states_are_pinned_and_keep_the_permutation():
    assert TASK.chain(Problem("a", 30)) == ORG1.chain(Problem("a", 30))
    assert (
        len(TASK.hard_states) == 14 and TASK.hard_states == PermutationChain(n_hard=14).hard_states
    )
    for s in TASK.hard_states:
        assert TASK.wrong_step(s) not in (s, TASK.step(s))
    with pytest.raises(ValueError, match="not a hard state"):
        TASK.wrong_step(next(s for s in TASK.states if s not in TASK.hard_states))
    again = PermutationChain.from_dict(json.loads(json.dumps(TASK.to_dict())))
    assert again == TASK and again.hard_states == TASK.hard_states


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="n_hard"):
        PermutationChain(n_hard=40)
    with pytest.raises(ValueError, match="check_slack"):
        PermutationChain(check_slack=-1)
    with pytest.raises(ValueError, match="check_p"):
        CorpusSpec(check_p=(0.8, 0.2))
    with pytest.raises(ValueError, match="hard_wrong"):
        CorpusSpec(hard_wrong=1.5)
    with pytest.raises(ValueError, match="unknown keys"):
        PermutationChain.from_dict({"n_hard": 3, "hard": 2})


def test_budget_of_is_the_per_problem_formula():
    p = _problem_with(TASK, 2)
    assert TASK.n_hard_steps(p) == 2
    assert TASK.budget_of(p) == 6 + 2 * (2 + 2) + 5
    assert PermutationChain(n_hard=14, budget=10, check_slack=2).budget_of(p) == 10  # capped


def test_strict_reward_on_hand_made_traces():
    p = _problem_with(TASK, 2)
    chain = TASK.chain(p)
    hard_at = [i for i in range(p.hops) if chain[i] in TASK.hard_states]
    ans = "=" + chain[-3:] + "."
    scheduled = _greedy_base_text(TASK, p, check_at=hard_at)
    assert TASK.verify(p, scheduled + ans) == 1.0  # checked exactly where wrong
    assert TASK.trace_stats(p, scheduled + ans).chain_right
    # unchecked: the greedy base's chain runs off the true one
    greedy = _greedy_base_text(TASK, p)
    assert TASK.verify(p, greedy + "=" + greedy[-3:] + ".") == 0.0
    # wrong steps that cancel: the answer is right, the chain is not
    i = hard_at[0]
    other = next(s for s in TASK.states if s not in chain)
    cancel = chain[1 : i + 1] + other + chain[i + 2 :]
    assert len(cancel) == p.hops and cancel[-3:] == chain[-3:]
    assert TASK.verify(p, cancel + ans, strict=False) == 1.0
    assert TASK.verify(p, cancel + ans) == 0.0
    assert not TASK.trace_stats(p, cancel + ans).chain_right
    # a check with a wrong value breaks the chain even where the step was right
    assert TASK.verify(p, chain[1] + "?" + other + chain[2:] + ans) == 0.0
    # checking after every step overflows the per-problem budget
    every = "".join(chain[j] + "?" + chain[j] for j in range(1, p.hops + 1))
    assert len(every + ans) > TASK.budget_of(p)
    assert TASK.verify(p, every + ans) == 0.0 and TASK.trace_stats(p, every + ans).chain_right
    # two extra checks (the slack) still fit, three do not
    extra = [j for j in range(p.hops) if j not in hard_at]
    fits = "".join(
        chain[j + 1] + ("?" + chain[j + 1] if j in hard_at or j in extra[:2] else "")
        for j in range(p.hops)
    )
    assert TASK.verify(p, fits + ans) == 1.0
    over = "".join(
        chain[j + 1] + ("?" + chain[j + 1] if j in hard_at or j in extra[:3] else "")
        for j in range(p.hops)
    )
    assert TASK.verify(p, over + ans) == 0.0
    # a direct guess of the right answer has no chain: the strict reward does not pay it
    assert TASK.verify(p, ans) == 0.0 and TASK.verify(p, ans, strict=False) == 1.0


def test_corpus_with_hard_states():
    spec = CorpusSpec(mix=(0.1, 0.2, 0.7), corrupt=0.0, check_p=(0.0, 1.0), hops=(2, 20))
    rng = np.random.default_rng(0)
    densities, hard_steps, hard_ok = [], 0, 0
    for _ in range(1500):
        p, fmt, c, events = corpus_trace(TASK, rng, spec)
        if fmt == "DIRECT":
            continue
        st = TASK.trace_stats(p, c)
        assert st.stopped_right and st.answer_consistent and st.checks_right == st.checks
        # every step from a hard state is its wrong successor, every other step is right
        for idx, kind, true in events:
            if kind.startswith("hard_step"):
                hard_steps += 1
                hard_ok += kind == "hard_step"
                before = next(s for s in TASK.states if TASK.step(s) == true)
                assert c[idx] == TASK.wrong_step(before)
            elif kind.startswith("step"):
                assert kind == "step" and c[idx] == true
        assert st.chain_right == (st.wrong_steps == st.hard_checks)  # all wrong steps checked
        if fmt == "CHECK" and p.hops >= 10:
            densities.append(st.checks / st.steps)
        starts = {s.start: s.label for s in TASK.spans(TASK.prompt(p), c)}
        text = TASK.prompt(p) + c
        for i in range(len(TASK.prompt(p)), len(text)):
            assert TASK.segment_start(text[:i], text[i]) == starts.get(i)
    assert hard_steps > 500 and hard_ok == 0
    # a density per trace: traces with almost no checks and traces checked almost everywhere
    assert min(densities) < 0.15 and max(densities) > 0.85 and 0.4 < np.mean(densities) < 0.6
    half = CorpusSpec(hard_wrong=0.5)
    kinds = [
        k
        for _ in range(300)
        for _, k, _ in corpus_trace(TASK, rng, half)[3]
        if k.startswith("hard")
    ]
    assert 0.4 < kinds.count("hard_step") / len(kinds) < 0.6


def test_ground_truth_schedule_with_hard_states():
    p = _problem_with(TASK, 2)
    prompt, chain = TASK.prompt(p), TASK.chain(p)
    hard_at = [i for i in range(p.hops) if chain[i] in TASK.hard_states]
    text = _greedy_base_text(TASK, p, check_at=hard_at)
    labels, i = [], 0
    assert TASK.schedule(prompt) == "stepwise"
    while i < len(text):
        i += 1
        lab = TASK.schedule(prompt + text[:i])
        labels.append(lab)
        # the schedule's label is always one the next token could begin
        assert lab is None or lab in TASK.can_begin(prompt + text[:i])
    # check right after each (wrong) hard step, answer after the k-th hop, nothing else
    assert labels.count("check") == len(hard_at) and labels[-1] == "answer"
    assert [lab for lab in labels if lab] == ["check"] * len(hard_at) + ["answer"]
    for j, lab in enumerate(labels):
        if lab == "check":
            assert text[j + 1] == "?" and text[j] == TASK.wrong_step(text[j - 1] if j else p.start)
    # what the greedy base writes unchecked: a check is due right after the first hard step
    greedy = _greedy_base_text(TASK, p)
    first = hard_at[0]
    assert TASK.schedule(prompt + greedy[: first + 1]) == "check"
    assert TASK.schedule(prompt + greedy[:first]) is None


# ---------------------------------------------------------------------- design checks


class _RuleModel(torch.nn.Module):
    """A stand-in for a trained base: its argmax at every position is what the corpus's
    greedy base writes (``w(s)`` after a hard state, the true check value after ``?``,
    ``=`` after k effective hops, then the answer and ``.``); P(``?``) is ``p_check``, or,
    with ``oracle``, high exactly where the ground-truth schedule checks."""

    def __init__(self, task: PermutationChain, p_check: float = 0.1, oracle: bool = False):
        super().__init__()
        self.task, self.p_check, self.oracle = task, p_check, oracle
        self.v = vocab()
        self.inv = {i: t for t, i in self.v.items()}

    def _next(self, text: str) -> tuple[str, float]:
        task = self.task
        if ":" not in text:
            return "a", 0.0
        problem = task.parse_prompt(text[text.index(":") - 3 : text.index(":") + 1])
        done = text[text.index(":") + 1 :]
        if "=" in done:
            tail = done.split("=", 1)[1]
            body = done.split("=", 1)[0]
            eff, _ = task._effective(problem, body)
            ans = "".join(eff[-3:])
            return (ans[len(tail)] if len(tail) < 3 else "."), 0.0
        if done.endswith("?"):
            body = done[:-1]
            eff, _ = task._effective(problem, body[:-1])
            return task.step(eff[-1]), 0.0
        eff, _ = task._effective(problem, done)
        p_q = self.p_check
        if self.oracle:
            p_q = 0.9 if task.schedule(text) == "check" else 0.01
        if len(eff) - 1 >= problem.hops:
            return "=", p_q
        cur = eff[-1]
        return (task.wrong_step(cur) if cur in task.hard_states else task.step(cur)), p_q

    def forward(self, input_ids, attention_mask=None, **_):
        vocab_n = len(self.v)
        out = torch.full((*input_ids.shape, vocab_n), -20.0)
        for b in range(input_ids.shape[0]):
            toks = [self.inv[int(t)] for t in input_ids[b]]
            text = ""
            for t, tok in enumerate(toks):
                if tok not in ("<bos>", "<pad>", "<eos>"):
                    text += tok
                ch, p_q = self._next(text)
                out[b, t, self.v[ch]] = 5.0
                if p_q > 0:  # the rest of the mass on ch: P(?) = p_q exactly
                    out[b, t, self.v["?"]] = 5.0 + float(np.log(p_q / (1 - p_q)))
        return type("Out", (), {"logits": out})()


def test_scheduled_greedy_and_auroc_on_a_rule_model():
    from rlvr.organism.when import (
        check_auroc,
        scheduled_greedy,
        stop_by_density,
        wrong_chain_share,
    )
    from rlvr.organism.when_design import recovery_ci

    probs = [p for p in TASK.sample_problems(40, seed=1) if TASK.n_hard_steps(p) > 0][:12]
    base = _RuleModel(TASK)
    plain = scheduled_greedy(base, TASK, probs, None)
    sched = scheduled_greedy(base, TASK, probs, "schedule")
    every = scheduled_greedy(base, TASK, probs, "everywhere")
    right = {
        k: [TASK.verify(p, c) for p, c in zip(probs, cs)]
        for k, cs in (("plain", plain), ("sched", sched), ("every", every))
    }
    assert right["plain"] == [0.0] * len(probs)  # never checks: every hard step stays wrong
    assert right["sched"] == [1.0] * len(probs)
    assert right["every"] == [0.0] * len(probs)  # right chains, over the budget
    assert all(TASK.trace_stats(p, c).chain_right for p, c in zip(probs, every))
    for p, c in zip(probs, sched):
        assert c.split("=")[0].count("?") == TASK.n_hard_steps(p)
    rec = recovery_ci(right["sched"], right["plain"], [1.0] * len(probs), n_boot=50)
    assert rec["mean"] == 1.0
    with pytest.raises(ValueError, match="unknown policy"):
        scheduled_greedy(base, TASK, probs, "sometimes")
    stops = stop_by_density(base, TASK, CorpusSpec(hops=(4, 8)), n_traces=8)
    assert stops == {"0": 1.0, "0.25": 1.0, "0.5": 1.0, "0.75": 1.0, "1": 1.0}
    comps = [[c] for c in plain]
    auc = check_auroc(
        {"flat": base, "oracle": _RuleModel(TASK, oracle=True)}, TASK, probs, comps, n_boot=50
    )
    # unchecked, the base's steps are wrong exactly where it stands on a hard state
    bodies = [c.split("=")[0] for c in plain]
    assert auc["n_positive"] == sum(
        sum(prev in TASK.hard_states for prev in p.start + b[:-1]) for p, b in zip(probs, bodies)
    )
    assert auc["n_positions"] == sum(len(b) for b in bodies)
    assert auc["flat"]["auroc"] == pytest.approx(0.5)
    assert auc["oracle"]["auroc"] == pytest.approx(1.0)
    share = wrong_chain_share(TASK, probs, [[c] for c in sched])
    assert share["strict_pass1"] == 1.0 and share["rewarded_wrong_chain_share"] == 0.0


# ---------------------------------------------------------------------- the recipe

MINI_WHEN = """
[task]
n_states = 12
seed = 3
budget = 20
classes = { main = [3, 5] }
n_hard = 3
check_slack = 1
strict = true

[splits]
seed = 0
main = { test = 6, dev = 3, train = -1 }

[corpus]
mix = [0.1, 0.2, 0.7]
corrupt = 0.0
check_p = [0.0, 1.0]
hard_wrong = 1.0
hops = [2, 6]

[model]
d_model = 32
n_layers = 1
n_heads = 2
d_ff = 64
max_positions = 64

[pretrain]
steps = 20
batch_size = 16
lr = 0.003
warmup = 5
eval_every = 10

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


def test_miniature_when_train_evaluate_and_card(tmp_path):
    """The "when" recipe's whole pipeline in miniature: pretraining on the hard-state corpus,
    the gate, two GRPO seeds with the strict reward, evaluation with the design checks, card."""
    from rlvr.organism import evaluate, load_task, train, write_card

    recipe = tmp_path / "recipe.toml"
    recipe.write_text(MINI_WHEN)
    out = tmp_path / "when"
    record = train(recipe, out, progress=False, evaluate=False)
    assert [r["seed"] for r in record["rl"]] == [0, 1]
    task = load_task(out)
    assert task.strict and task.n_hard == 3 and task.check_slack == 1
    assert "hard_step_wrong" in record["gate"]["teacher_forced"]
    line = json.loads((out / "logs" / "rl-seed0.jsonl").read_text().splitlines()[0])
    assert 0 <= line["answer_right_chain_wrong"] <= 8
    res = evaluate(out, progress=False, max_problems=4)
    w = res["when"]
    assert set(w["greedy"]) == {"base", "base+schedule", "base+everywhere", "rl-seed0", "rl-seed1"}
    assert set(w["stop_by_density"]["base"]["main_hops"]) == {"0", "0.25", "0.5", "0.75", "1"}
    for r in w["greedy"].values():
        assert r["pass1"]["low"] <= r["pass1"]["mean"] <= r["pass1"]["high"]
        assert 0.0 <= r["lenient_pass1"] <= 1.0 and r["pass1"]["mean"] <= r["lenient_pass1"]
    chains = res["models"]["base"]["classes"]["main"]["chains"]
    assert chains["strict_pass1"] <= chains["lenient_pass1"]
    card = write_card(out)
    assert (out / "README.md").read_text() == card
    assert "Design checks" in card and "pass@k" in card


@pytest.mark.skipif(
    not (WHEN_DIR / "rl-seed0" / "model.safetensors").exists(),
    reason="organism 2 is not shipped yet",
)
def test_shipped_when_organism_files_and_recipe():
    from rlvr.organism import load_splits

    recipe = load_recipe(WHEN_DIR / "recipe.toml")
    assert recipe.task.strict and recipe.task.n_hard > 0 and recipe.task.check_slack is not None
    test = load_splits("test", organism_dir=WHEN_DIR)
    train = {p.uid for p in load_splits("train", organism_dir=WHEN_DIR)}
    assert len(test) >= 150 and not train & {p.uid for p in test}
    for name in ("results.json", "training.json", "README.md"):
        assert (WHEN_DIR / name).exists(), name
    results = json.loads((WHEN_DIR / "results.json").read_text())
    assert "when" in results


def test_experiment_config_reads_the_when_task():
    from rlvr.tasks import load_task
    from steering.config import load_config

    root = Path(__file__).resolve().parents[1]
    cfg = load_config(root / "data" / "experiments" / "organism_when.toml", check_paths=False)
    assert cfg.task.kind == "organism" and cfg.sampling.n >= max(cfg.sampling.ks)
    splits = {"test": root / "data" / "organism-when" / "splits" / "test.jsonl"}
    if splits["test"].exists():
        task = load_task("organism", splits, spec=root / "data" / "organism-when" / "recipe.toml")
        assert task.chain.strict and task.chain.n_hard == 14
        assert task.max_new_tokens == task.chain.budget
