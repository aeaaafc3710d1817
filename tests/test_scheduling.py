"""The scheduling study's instruments on the shipped organism: reference routers, the
timing-true control, exclusive schedules, emission rules, router quality, refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import probes
from rlvr.generation.draws import choose_tokens, row_keys, step_uniform
from rlvr.organism import checkpoint
from rlvr.tasks import MathTask, load_task
from steering import (
    EveryBoundaryRouter,
    FirstDecisionRouter,
    GroundTruthRouter,
    HybridDecoder,
    ModelRouter,
    RouterStack,
    TimingRandomRouter,
    router_quality,
)
from steering.hybrid.records import HybridGeneration
from steering.recovery import recovery_difference

ROOT = Path(__file__).resolve().parent.parent
LABELS = ["check", "answer", "stepwise", "direct"]


@pytest.fixture(scope="module")
def task():
    return load_task(
        "organism",
        {"test": ROOT / "data/organism-sharpening/splits/test.jsonl"},
        ROOT / "data/organism-sharpening/recipe.toml",
    )


@pytest.fixture(scope="module")
def base():
    return probes.wrap(checkpoint("base"))


@pytest.fixture(scope="module")
def rl():
    return probes.wrap(checkpoint("rl-seed0"))


@pytest.fixture(scope="module")
def prompts(task):
    return [task.prompt(p) for p in task.problems("test", "main")[:6]]


def _kw(task, **over):
    kw = dict(n=4, temperature=1.0, max_new_tokens=task.max_new_tokens, seed=0, progress=False)
    return {**kw, **over}


def _prefixes(base, out, prompts):
    dec = base.tokenizer
    for g in out.generations:
        fired = {e.step: e.label for e in g.log}
        for t in range(g.n_tokens):
            before = dec.decode(g.token_ids[:t], skip_special_tokens=True)
            nxt = dec.decode(g.token_ids[: t + 1], skip_special_tokens=True)[len(before) :]
            yield g, t, prompts[g.prompt_index] + before, nxt, fired.get(t)


def test_ground_truth_router_fires_exactly_where_the_schedule_says(task, base, prompts):
    router = GroundTruthRouter(task, ["check", "answer", "stepwise"])
    dec = HybridDecoder(base, router, task=task, mode="handoff", exclusive=True, labels=LABELS)
    out = dec.generate(prompts, **_kw(task))
    n_check = 0
    for _, _, prefix, nxt, fired in _prefixes(base, out, prompts):
        if "=" in prefix[prefix.find(":") + 1 :]:
            break
        want = task.schedule(prefix)
        assert fired == want, (prefix, nxt)
        # emit="label": the handed-over token begins the fired label
        if fired is not None:
            assert task.segment_start(prefix, nxt) == fired
        else:  # exclusive: nothing scheduled begins unscheduled
            assert task.segment_start(prefix, nxt) not in LABELS
        n_check += fired == "check"
    assert n_check > 0
    # the per-step records agree: ground truth equals the firing everywhere
    q = router_quality(out, ["check", "answer"], n_boot=0)
    assert q["check"]["precision"] == q["check"]["recall"] == 1.0
    assert q["answer"]["auroc"] == 1.0


def test_a_task_without_a_schedule_and_bad_settings_are_refused(task, base, rl):
    with pytest.raises(ValueError, match="no ground-truth schedule"):
        GroundTruthRouter(MathTask("gsm8k"))
    with pytest.raises(ValueError, match="not labels of the task"):
        HybridDecoder(base, GroundTruthRouter(task), task=task, mode="handoff", labels=["plan"])
    with pytest.raises(ValueError, match="exclusive"):
        HybridDecoder(
            base,
            FirstDecisionRouter(ModelRouter(rl, task.segment_start)),
            task=task,
            mode="handoff",
            exclusive=True,
        )
    with pytest.raises(ValueError, match="emission rule"):
        HybridDecoder(base, GroundTruthRouter(task), task=task, mode="handoff", emit="nearest")
    with pytest.raises(ValueError, match="router's model"):
        HybridDecoder(base, GroundTruthRouter(task), task=task, mode="handoff", emit="sample")
    with pytest.raises(ValueError, match="rate"):
        TimingRandomRouter({"check": 1.5}, task)
    with pytest.raises(ValueError, match="needs labels"):
        EveryBoundaryRouter(task, None)


def test_timing_control_fires_only_where_the_label_can_begin_at_the_rate(task, base, prompts):
    rate = 0.3
    router = TimingRandomRouter({"check": rate}, task, seed=1)
    dec = HybridDecoder(base, router, task=task, mode="handoff", labels=["check"])
    out = dec.generate(prompts, **_kw(task, n=8))
    fired = eligible = 0
    for _, _, prefix, nxt, lab in _prefixes(base, out, prompts):
        can = "check" in task.can_begin(prefix)
        eligible += can
        if lab is not None:
            assert lab == "check" and can
            assert nxt == "?"  # emit="label": the base's own token that begins a check
            fired += 1
    assert eligible > 200
    assert abs(fired / eligible - rate) < 4 * np.sqrt(rate * (1 - rate) / eligible)
    assert out.eligible_rates["check"] == pytest.approx(fired / eligible)


def test_every_boundary_handoff_is_the_router_models_own_choice_there(task, base, rl, prompts):
    router = EveryBoundaryRouter(task, ["check", "answer", "stepwise", "direct", "step"])
    ho = ModelRouter(rl, task.segment_start)  # only for its model: the tokens come from RL
    stack = RouterStack(router, FirstDecisionRouter(ho))
    dec = HybridDecoder(base, stack, task=task, mode="handoff", emit="sample")
    out = dec.generate(prompts, **_kw(task, n=2))
    n = 0
    for g in out.generations:
        ids = base.tokenizer(prompts[g.prompt_index])["input_ids"]
        seq = torch.tensor([ids + g.token_ids])
        with torch.no_grad():
            rl_logits = rl.run(seq).logits[0].float()
            base_logits = base.run(seq).logits[0].float()
        key = row_keys(0, torch.tensor([g.prompt_index]), torch.tensor([g.sample_index]))
        fired = {e.step for e in g.log}
        for t, tok in enumerate(g.token_ids):
            u = step_uniform(key, t)
            src = rl_logits if t in fired else base_logits
            assert int(choose_tokens(src[len(ids) + t - 1][None], 1.0, 1.0, u)) == tok
            n += t in fired
    # inside segments (a check's value, the answer's letters) the base writes
    assert 0 < n < sum(g.n_tokens for g in out.generations)


def test_exclusive_masks_only_unscheduled_starts_and_changes_the_result(task, base, prompts):
    router = GroundTruthRouter(task, ["check", "answer", "stepwise"])
    kw = _kw(task)
    loose = HybridDecoder(base, router, task=task, mode="handoff", labels=LABELS).generate(
        prompts, **kw
    )
    unscheduled = 0
    for _, _, prefix, nxt, lab in _prefixes(base, loose, prompts):
        started = task.segment_start(prefix, nxt)
        unscheduled += lab is None and started in ("check", "answer", "direct")
    assert unscheduled > 0  # the base's own habits dilute a schedule without exclusive


def test_router_quality_against_hand_computed_values():
    steps = [  # (step, ground truth, fired, scores at eligible labels)
        (1, "check", "check", {"check": 0.9}),
        (2, None, "check", {"check": 0.8}),
        (3, None, None, {"check": 0.1}),
        (4, "check", None, {"check": 0.2}),
        (5, None, None, {"answer": 0.5}),
    ]
    more = [(1, None, None, {"check": 0.3}), (2, "check", "check", {"check": 0.7})]
    gens = [
        HybridGeneration(0, 0, "", [], [], "eos", steps),
        HybridGeneration(1, 0, "", [], [], "eos", more),
    ]

    class R:
        generations = gens

    q = router_quality(R(), ["check"], n_boot=50)["check"]
    # eligible 6: positives {1, 4, 2'}, fired {1, 2, 2'}: tp 2
    assert q["n_eligible"] == 6 and q["n_positive"] == 3 and q["n_fired"] == 3
    assert q["precision"] == pytest.approx(2 / 3) and q["recall"] == pytest.approx(2 / 3)
    # positives' scores .9 .2 .7 vs negatives .8 .1 .3: pairs won 2+2+... = (3+1+2)/9
    assert q["auroc"] == pytest.approx(6 / 9)
    lo, hi = q["auroc_ci"]
    assert 0 <= lo <= hi <= 1


def _one_class(y) -> bool:
    return bool(y.all() or not y.any())


def _generations(groups):
    """One generation per list of (truth, score) pairs, all at label ``check``."""
    gens = []
    for i, pairs in enumerate(groups):
        steps = [
            (t, "check" if y else None, None, {"check": sc}) for t, (y, sc) in enumerate(pairs)
        ]
        gens.append(HybridGeneration(i, 0, "", [], [], "eos", steps))
    return gens


def _ci_by_resample(gens, n_boot, seed):
    """The AUROC CI drawn one resample at a time: a resample of generations with one class
    has no AUROC and is left out; none left, no CI."""
    from sklearn.metrics import roc_auc_score

    y = np.array([gt == "check" for g in gens for _, gt, _, _ in g.steps])
    s = np.array([sc["check"] for g in gens for *_, sc in g.steps])
    g = np.array([i for i, gen in enumerate(gens) for _ in gen.steps])
    rng = np.random.default_rng(seed)
    groups = np.unique(g)
    vals = []
    for _ in range(n_boot):
        pick = rng.choice(groups, size=len(groups), replace=True)
        idx = np.concatenate([np.flatnonzero(g == k) for k in pick])
        if not _one_class(y[idx]):
            vals.append(roc_auc_score(y[idx], s[idx]))
    ci = [np.percentile(vals, 2.5), np.percentile(vals, 97.5)] if vals else None
    return ci, n_boot - len(vals)


class _Result:
    def __init__(self, gens):
        self.generations = gens


def test_router_quality_ci_is_the_resample_by_resample_ci_one_class_resamples_left_out():
    rng = np.random.default_rng(3)
    # generations holding one class only, so that some resamples hold one class
    groups = [
        [(k % 3 == 0, round(float(rng.random()), 1)) for _ in range(int(rng.integers(1, 6)))]
        for k in range(6)
    ]
    gens = _generations(groups)
    want, n_one_class = _ci_by_resample(gens, 300, seed=7)
    assert n_one_class > 0 and want is not None
    got = router_quality(_Result(gens), ["check"], n_boot=300, seed=7)["check"]["auroc_ci"]
    assert got == pytest.approx(want, abs=1e-12)
    # two generations, one class each: a seed whose every resample holds one class gets no CI
    gens = _generations([[(True, 0.9), (True, 0.4)], [(False, 0.5)]])
    seed = next(k for k in range(200) if _ci_by_resample(gens, 3, seed=k)[0] is None)
    q = router_quality(_Result(gens), ["check"], n_boot=3, seed=seed)["check"]
    assert q["auroc"] == pytest.approx(0.5) and q["auroc_ci"] is None


def test_recovery_difference_is_paired():
    base = np.array([0.0, 0.0, 0.2, 0.1])
    rl = np.array([1.0, 0.8, 1.0, 0.9])
    a, b = rl.copy(), base.copy()
    d, (lo, hi) = recovery_difference(a, b, base, rl, n_boot=200)
    assert d == pytest.approx(1.0) and lo == pytest.approx(1.0) and hi == pytest.approx(1.0)
    with pytest.raises(ValueError, match="min_gap"):
        recovery_difference(a, b, rl, base)


_TIMING_CONTROL_RUN = """
import json, probes
from pathlib import Path
from rlvr.organism import checkpoint
from rlvr.tasks import load_task
from steering import GroundTruthRouter, HybridDecoder, TimingRandomRouter
root = Path({root!r})
task = load_task("organism", {{"test": root / "data/organism-sharpening/splits/test.jsonl"}},
                 root / "data/organism-sharpening/recipe.toml")
base = probes.wrap(checkpoint("base"))
prompts = [task.prompt(p) for p in task.problems("test", "main")[:2]]
kw = dict(n=2, temperature=1.0, max_new_tokens=task.max_new_tokens, seed=0, progress=False)
labels = ["check", "answer", "stepwise", "direct", "step"]
gt = HybridDecoder(base, GroundTruthRouter(task), task=task, mode="handoff", labels=labels)
rates = gt.generate(prompts, **kw).eligible_rates
ctl = HybridDecoder(base, TimingRandomRouter(rates, task, seed=3), task=task, mode="handoff",
                    labels=labels)
out = ctl.generate(prompts, **kw)
print(json.dumps({{"rates": list(rates.items()), "texts": out.texts,
                  "steps": [list(s[3]) for g in out.generations for s in g.steps]}}))
"""


def test_the_timing_control_is_the_same_under_any_hash_seed():
    """Labels come from sets (``can_begin``); their order must not follow Python's hash seed,
    or the control's draws, and its result, change from one process to the next."""
    import json
    import os
    import subprocess
    import sys

    code = _TIMING_CONTROL_RUN.format(root=str(ROOT))
    outs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "OMP_NUM_THREADS": "1"}
        run = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT
        )
        assert run.returncode == 0, run.stderr[-2000:]
        outs.append(json.loads(run.stdout.strip().splitlines()[-1]))
    assert [k for k, _ in outs[0]["rates"]] == sorted(k for k, _ in outs[0]["rates"])
    assert any(v > 0 for _, v in outs[0]["rates"])
    assert outs[0] == outs[1]


class _FakeView:
    """What a router sees, for ``rows`` rows at one step, with seeded uniform numbers."""

    def __init__(self, rows: int, step: int = 0) -> None:
        self.live, self.step = [True] * rows, step

    def prefix(self, row: int) -> str:
        return ""

    def uniform(self, salt: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(salt * 1009 + self.step)
        return torch.rand(len(self.live), generator=g)


def test_timing_control_fires_each_label_at_its_rate_where_several_can_begin():
    rates = {"answer": 0.3, "check": 0.3, "stepwise": 0.2}
    router = TimingRandomRouter(rates, lambda prefix: {"answer", "check", "stepwise"}, seed=2)
    fired = {lab: 0 for lab in rates}
    rows, steps = 4000, 5
    for step in range(steps):
        for lab in router.decide(_FakeView(rows, step)):
            if lab is not None:
                fired[lab] += 1
    n = rows * steps
    for lab, rate in rates.items():  # each at its own rate, not the first label's leftovers
        assert abs(fired[lab] / n - rate) < 4 * np.sqrt(rate * (1 - rate) / n), (lab, fired)


def test_stacks_and_wrappers_keep_one_router_model_and_its_unless_base(task, base, rl):
    other = probes.wrap(checkpoint("rl-seed1"))
    with pytest.raises(ValueError, match="different router models"):
        RouterStack(ModelRouter(rl, task.segment_start), ModelRouter(other, task.segment_start))
    same = RouterStack(ModelRouter(rl, task.segment_start), GroundTruthRouter(task))
    assert same.model is rl and same.unless_base is False
    picky = ModelRouter(rl, task.segment_start, unless_base=True)
    assert FirstDecisionRouter(picky).unless_base is True
    assert RouterStack(picky, ModelRouter(rl, task.segment_start, unless_base=True)).unless_base
    with pytest.raises(ValueError, match="unless_base"):
        RouterStack(picky, GroundTruthRouter(task))
    with pytest.raises(ValueError, match="unless_base"):  # refused in steer mode, wrapped too
        HybridDecoder(base, FirstDecisionRouter(picky), {"check": {}}, task=task, mode="steer")


def test_recovery_difference_refuses_the_gaps_recovery_refuses():
    base, rl = np.full(20, 0.50), np.full(20, 0.51)
    a, b = np.full(20, 0.51), np.full(20, 0.50)
    with pytest.raises(ValueError, match="min_gap"):
        recovery_difference(a, b, base, rl)
    d, _ = recovery_difference(a, b, base, rl, min_gap=0.005)
    assert d == pytest.approx(1.0)


def test_hit_rate_reads_a_sentencepiece_tokens_leading_space():
    from types import SimpleNamespace as NS

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from steering.hybrid.records import HybridEvent
    from steering.scheduling.views import hit_rate

    words = ["<unk>", "</s>", "▁Q", "▁Done.", "▁Wait", "▁so", "?"]
    tk = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tk.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="<unk>", eos_token="</s>")
    ids = {w: i for i, w in enumerate(words)}
    completion = [ids["▁Done."], ids["▁Wait"], ids["▁so"]]
    task = MathTask("gsm8k")
    assert task.segment_start("Q? Done.", " Wait") == "backtracking"
    fired = HybridEvent(1, 3, "backtracking", "handoff", ids["▁Wait"])
    run = NS(
        model=lambda which: NS(tokenizer=tok),
        task=NS(prompt=lambda p: "Q?", segment_start=task.segment_start),
    )
    out = NS(generations=[NS(prompt_index=0, token_ids=completion, log=[fired])])
    assert hit_rate(run, [None], out) == 1.0
