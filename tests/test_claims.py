"""The RL-claim experiments: rewards, unseen transitions, the claims recipe, verdict rules,
a tiny claims folder trained and measured end to end, and the shipped folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from rlvr.organism import CorpusSpec, PermutationChain, Problem, load_task
from rlvr.organism.claims import ClaimSettings, effect, load_claims, shortcuts
from rlvr.organism.corpus import corpus_trace, transitions_shown
from rlvr.organism.grpo import RLSpec
from rlvr.organism.rewards import make_reward

ROOT = Path(__file__).resolve().parents[1]
ORGANISM = ROOT / "data" / "organism-sharpening"
CLAIMS_DIR = ROOT / "data" / "organism-claims"

# -- rewards -------------------------------------------------------------------------------


def test_rewards_score_what_they_name():
    task = load_task()
    p = Problem("a", 12)
    right = "=" + task.answer(p) + "."
    wrong_answer = "=" + ("abc" if task.answer(p) != "abc" else "abd") + "."
    unfinished = "abc"
    verify, fmt, incorrect = (make_reward(n, task) for n in ("verify", "format", "incorrect"))
    assert [verify(p, c) for c in (right, wrong_answer, unfinished)] == [1.0, 0.0, 0.0]
    assert [fmt(p, c) for c in (right, wrong_answer, unfinished)] == [1.0, 1.0, 0.0]
    assert [incorrect(p, c) for c in (right, wrong_answer, unfinished)] == [0.0, 1.0, 0.0]
    over_budget = "a" * task.budget + right
    assert fmt(p, over_budget) == 0.0


def test_random_reward_is_seeded_and_fair():
    task = load_task()
    p = Problem("a", 12)
    r1, r2 = make_reward("random", task, seed=3), make_reward("random", task, seed=3)
    a = [r1(p, "=abc.") for _ in range(2000)]
    b = [r2(p, "zzz") for _ in range(2000)]
    assert a == b  # the completion plays no part; the seed fixes the stream
    assert 0.45 < np.mean(a) < 0.55
    assert set(a) == {0.0, 1.0}
    with pytest.raises(ValueError, match="use one of"):
        make_reward("length", task)


def test_rlspec_refuses_bad_reward_and_minibatching():
    with pytest.raises(ValueError, match="reward"):
        RLSpec(reward="len")
    with pytest.raises(ValueError, match="divide"):
        RLSpec(prompts_per_step=8, group=16, steps_per_generation=3)
    assert RLSpec(steps_per_generation=4, clip=False).clip is False


# -- unseen transitions -----------------------------------------------------------------------


def test_corpus_never_shows_an_unseen_transition():
    task = PermutationChain()
    u = "q"
    spec = CorpusSpec(unseen=(u,))
    rng = np.random.default_rng(0)
    crossing = 0
    for _ in range(600):
        p, _, c, _ = corpus_trace(task, rng, spec)
        assert u not in transitions_shown(task, p, c)
        crossing += task.crosses(p, [u])
    # problems crossing q stay in the corpus (as guesses, or with a wrong step after q)
    assert crossing > 0
    plain = [corpus_trace(task, np.random.default_rng(1), CorpusSpec())[2] for _ in range(3)]
    empty = [
        corpus_trace(task, np.random.default_rng(1), CorpusSpec(unseen=()))[2] for _ in range(3)
    ]
    assert plain == empty  # no unseen states: the corpus's stream as before


def test_transitions_shown_and_crosses():
    task = PermutationChain()
    p = Problem("a", 3)
    chain = task.chain(p)
    assert transitions_shown(task, p, chain[1:] + "=" + chain[-3:] + ".") >= set(chain[:-1])
    assert task.crosses(p, [chain[1]]) and not task.crosses(p, [chain[-1]])
    # a check after a wrong step from u recomputes f(u): it shows u -> f(u)
    u = chain[1]
    wrong = next(s for s in task.states if s != task.step(u))
    checked = chain[1] + wrong + "?" + task.step(u)
    assert u in transitions_shown(task, p, checked)
    assert u not in transitions_shown(task, p, chain[1] + wrong)
    with pytest.raises(ValueError, match="list of states"):
        CorpusSpec(unseen="q")
    with pytest.raises(ValueError, match="not states"):
        corpus_trace(task, np.random.default_rng(0), CorpusSpec(unseen=("!",)))


# -- recipe, verdict rule, shortcuts -------------------------------------------------------


def _recipe(tmp_path: Path, body: str) -> Path:
    text = f'organism = "{ORGANISM}"\n' + body
    path = tmp_path / "recipe.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "body, match",
    [
        ('[[run]]\nname = "a"\nclaim = "magic"\nkind = "grpo"\n', "unknown claim|use one of"),
        ('[[run]]\nname = "a"\nclaim = "spurious"\nkind = "dpo"\n', "kind"),
        ('[[run]]\nname = "a"\nclaim = "spurious"\nkind = "grpo"\n' * 2, "used twice"),
        ('[[run]]\nname = "a"\nclaim = "spurious"\nkind = "grpo"\nstart = "b"\n', "earlier run"),
        (
            '[[run]]\nname = "a"\nclaim = "spurious"\nkind = "grpo"\nrl = { lrr = 1 }\n',
            "unknown keys",
        ),
        ('[[run]]\nname = "a"\nclaim = "spurious"\nkind = "grpo"\nproblems = "all"\n', "problems"),
        ('[[run]]\nname = "a"\nclaim = "spurious"\n', "lacks 'kind'"),
    ],
)
def test_claims_recipe_refuses(tmp_path, body, match):
    with pytest.raises(ValueError, match=match):
        load_claims(_recipe(tmp_path, body))


def test_claims_recipe_overrides_the_organism_rl(tmp_path):
    r = load_claims(
        _recipe(
            tmp_path,
            '[[run]]\nname = "a"\nclaim = "spurious"\nkind = "grpo"\n'
            'rl = { reward = "random", steps = 7 }\n',
        )
    )
    (run,) = r.runs
    assert run.rl.reward == "random" and run.rl.steps == 7
    assert run.rl.group == r.organism.rl.group  # the rest from the organism's [rl]


@pytest.mark.parametrize(
    "low, high, want",
    [
        (0.05, 0.2, "yes"),
        (-0.01, 0.015, "no"),
        (-0.3, -0.1, "no"),
        (-0.01, 0.2, "unclear"),
        (0.001, 0.01, "no"),
    ],
)
def test_effect_rule(low, high, want):
    assert effect(low, high, 0.02) == want


def test_shortcuts_are_named_from_the_trace():
    task = load_task()
    p = Problem("a", 12)
    chain = task.chain(p)
    full = chain[1:] + "=" + chain[-3:] + "."
    assert shortcuts(task, p, full) == {"no_steps": False, "skipped_hops": False, "repeated": False}
    assert shortcuts(task, p, "=" + chain[-3:] + ".")["no_steps"]
    short = chain[1:6] + "=" + chain[3:6] + "."
    assert shortcuts(task, p, short)["skipped_hops"]
    loop = chain[1:4] + chain[1:4] + "=" + chain[1:4] + "."
    assert shortcuts(task, p, loop)["repeated"]


def test_claim_settings_refuse():
    with pytest.raises(ValueError, match="ks"):
        ClaimSettings(n=8, ks=(1, 16))
    with pytest.raises(ValueError, match="increasing"):
        ClaimSettings(ks=(4, 1))
    with pytest.raises(ValueError, match="min_effect"):
        ClaimSettings(min_effect=0.0)


# -- a tiny claims folder, trained and measured ------------------------------------------------

TINY = """
[select]
one_n = 4
over_hard_pool = 6
over_hard_n = 8
[teacher]
checkpoint = "{teacher}"
n = 1
[[run]]
name = "tiny-random"
claim = "spurious"
kind = "grpo"
rl = {{ reward = "random", steps_per_generation = 4, steps = 4, prompts_per_step = 2, group = 4 }}
[[run]]
name = "tiny-sft"
claim = "sparsity"
kind = "sft"
snapshots = [1, 2]
sft = {{ steps = 2, batch_size = 8, lr = 1e-5 }}
[[run]]
name = "tiny-rl"
claim = "sparsity"
kind = "grpo"
snapshots = [1, 2]
rl = {{ steps = 2, lr = 1e-5, prompts_per_step = 2, group = 4 }}
"""


@pytest.fixture(scope="module")
def tiny_claims(tmp_path_factory):
    from rlvr.organism.claims import train_claims

    tmp = tmp_path_factory.mktemp("claims")
    recipe = _recipe(tmp, TINY.format(teacher=ORGANISM / "rl-seed0"))
    out = tmp / "out"
    record = train_claims(recipe, out, progress=False)
    return out, record


def test_tiny_claims_train_and_record(tiny_claims):
    out, record = tiny_claims
    assert set(record["runs"]) == {"tiny-random", "tiny-sft", "tiny-rl"}
    for name in record["runs"]:
        assert (out / name / "model.safetensors").exists()
    log = [json.loads(x) for x in (out / "logs" / "tiny-random.jsonl").read_text().splitlines()]
    assert len(log) == 1  # four updates from one generation batch
    assert {"reward", "verified", "formats"} <= set(log[0])
    rl = record["runs"]["tiny-rl"]  # how the rollouts were drawn, in the loop's words
    budget = load_task().budget
    assert rl["rollouts"] == {
        "n": 4,
        "temperature": 1.0,
        "top_p": 1.0,
        "max_new_tokens": budget + 1,
        "stop": [],
        "seed": rl["seed"],
    }
    sft = record["runs"]["tiny-sft"]
    assert set(sft["updates"]) == {"1", "2"}
    assert 0 < sft["updates"]["1"]["bf16_updated"] <= sft["updates"]["2"]["bf16_updated"] <= 1
    assert record["teacher"]["kept"] > 0
    lines = (out / "teacher-traces.jsonl").read_text().splitlines()
    task = load_task()
    for line in lines:
        r = json.loads(line)
        assert task.verify(Problem.from_dict(r), r["completion"]) == 1.0
    # a second call trains nothing again
    from rlvr.organism.claims import train_claims

    before = (out / "tiny-rl" / "model.safetensors").stat().st_mtime_ns
    train_claims(out / "recipe.toml", out, progress=False)
    assert (out / "tiny-rl" / "model.safetensors").stat().st_mtime_ns == before


def test_tiny_sparsity_claim_measures_and_catches_a_stale_record(tiny_claims, tmp_path):
    from rlvr.organism.claims import measure_claim

    out, _ = tiny_claims
    res = measure_claim("sparsity", out, ClaimSettings(n_boot=200, min_effect=0.05))
    assert res["verdict"] in ("reproduced", "not reproduced", "inconclusive")
    assert {x["steps"] for x in res["grid"]} == {1, 2}
    (c1, c2) = res["comparisons"]
    assert c1["sft_minus_rl"]["low"] <= c1["sft_minus_rl"]["mean"] <= c1["sft_minus_rl"]["high"]
    stale = tmp_path / "stale"
    shutil.copytree(out, stale)
    rec = json.loads((stale / "training.json").read_text())
    rec["runs"]["tiny-rl"]["update"]["bf16_updated"] += 0.01
    (stale / "training.json").write_text(json.dumps(rec))
    with pytest.raises(ValueError, match="differs from training.json"):
        measure_claim("sparsity", stale, ClaimSettings(n_boot=200))
    partial = tmp_path / "partial"  # a run the recipe names is not trained: no verdict
    shutil.copytree(out, partial)
    rec = json.loads((partial / "training.json").read_text())
    del rec["runs"]["tiny-rl"]
    (partial / "training.json").write_text(json.dumps(rec))
    with pytest.raises(ValueError, match="lacks the sparsity runs \\['tiny-rl'\\]"):
        measure_claim("sparsity", partial, ClaimSettings(n_boot=200))


def test_tiny_spurious_claim_runs_through_the_cli(tiny_claims, tmp_path):
    from steering.cli import main

    out, _ = tiny_claims
    cfg = tmp_path / "claim.toml"
    cfg.write_text(
        f"""
[experiment]
name = "tiny_claim"
output = "{tmp_path / "run"}"
[models]
base = "{ORGANISM / "base"}"
rl = "{out / "tiny-random"}"
[task]
kind = "organism"
spec = "{ORGANISM / "recipe.toml"}"
dev = "{ORGANISM / "splits" / "dev.jsonl"}"
test = "{ORGANISM / "splits" / "test.jsonl"}"
classes = ["main"]
[claim]
kind = "spurious"
folder = "{out}"
n = 4
n_problems = 6
ks = [1, 4]
n_boot = 200
"""
    )
    assert main(["run", str(cfg), "--quiet"]) == 0
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    claim = res["claim"]
    assert set(claim["rewards"]) == {"tiny-random"}
    assert claim["rewards"]["tiny-random"]["verdict"] in (
        "reproduced",
        "not reproduced",
        "inconclusive",
    )
    assert claim["clipping"]["verdict"] == "inconclusive"  # no no-clip run to compare
    assert "passk" not in res  # a claim config runs the claim stage only
    assert (tmp_path / "run" / "claim_passk.png").exists()
    report = (tmp_path / "run" / "report.md").read_text()
    assert "Verdict:" in report
    assert main(["run", str(cfg), "--quiet"]) == 0
    assert json.loads((tmp_path / "run" / "results.json").read_text())["cache"] == {"claim": "hit"}
    log = out / "logs" / "tiny-random.jsonl"  # a file the claim reads changes: no cache hit
    kept = log.read_text()
    try:
        lines = [
            json.dumps(json.loads(x), sort_keys=True, separators=(",", ":"))
            for x in kept.splitlines()
        ]
        log.write_text("\n".join(lines) + "\n")
        assert log.read_text() != kept
        assert main(["run", str(cfg), "--quiet"]) == 0
        res = json.loads((tmp_path / "run" / "results.json").read_text())
        assert res["cache"] == {"claim": "computed"}
    finally:
        log.write_text(kept)


@pytest.mark.parametrize(
    "section, match",
    [
        ("[sampling]\ntemperature = 0.3", "a claim samples at T = 1"),
        ("[sampling]\nks = [1, 2]", "a claim samples at T = 1"),
        ("[sampling]\nbatch_size = 64", None),
    ],
)
def test_claim_configs_refuse_sampling_they_would_not_use(tmp_path, section, match):
    from steering.config import ConfigError, load_config

    cfg = tmp_path / "c.toml"
    cfg.write_text(
        (ROOT / "data/experiments/claim_spurious.toml")
        .read_text()
        .replace("[sampling]\nbatch_size = 1024", section)
    )
    cfg.write_text(cfg.read_text().replace('"data/', f'"{ROOT}/data/'))
    if match is None:
        assert load_config(cfg).sampling.batch_size == 64
        return
    with pytest.raises(ConfigError, match=match) as err:
        load_config(cfg)
    assert "c.toml:" in str(err.value) and "[sampling]" in str(err.value)


def test_a_claim_config_on_another_organism_is_refused(tmp_path):
    from steering.config import ConfigError, load_config

    text = (ROOT / "data/experiments/claim_spurious.toml").read_text()
    text = text.replace('"data/', f'"{ROOT}/data/').replace(
        "organism-sharpening/recipe", "organism-when/recipe"
    )
    (tmp_path / "c.toml").write_text(text)
    with pytest.raises(ConfigError, match="measured on the organism"):
        load_config(tmp_path / "c.toml")


@pytest.mark.parametrize(
    "claim_table, match",
    [
        ('kind = "magic"\nfolder = "data/organism-claims"', "unknown claim"),
        ('kind = "spurious"', "folder"),
        ('kind = "spurious"\nfolder = "data/organism-claims"\nn = 8\nks = [1, 16]', "ks"),
        ('kind = "spurious"\nfolder = "data"', "lacks recipe.toml"),
        ('folder = "data/organism-claims"', "needs a kind"),
    ],
)
def test_claim_config_errors_name_the_key(tmp_path, claim_table, match):
    from steering.config import ConfigError, load_config

    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f"""
[models]
base = "{ORGANISM / "base"}"
rl = "{ORGANISM / "rl-seed0"}"
[task]
kind = "organism"
spec = "{ORGANISM / "recipe.toml"}"
dev = "{ORGANISM / "splits" / "dev.jsonl"}"
test = "{ORGANISM / "splits" / "test.jsonl"}"
[claim]
{claim_table}
"""
    )
    with pytest.raises(ConfigError, match=match) as err:
        load_config(cfg)
    assert "c.toml:" in str(err.value)


# -- the shipped claims folder -----------------------------------------------------------------


@pytest.mark.skipif(not (CLAIMS_DIR / "training.json").exists(), reason="claims not trained")
def test_shipped_claims_folder_is_complete():
    recipe = load_claims(CLAIMS_DIR / "recipe.toml")
    record = json.loads((CLAIMS_DIR / "training.json").read_text())
    assert set(record["runs"]) == {r.name for r in recipe.runs}
    for run in recipe.runs:
        assert (CLAIMS_DIR / run.name / "model.safetensors").exists(), run.name
        if run.kind == "grpo":
            assert (CLAIMS_DIR / "logs" / f"{run.name}.jsonl").exists(), run.name
    assert record["overlap"], "the sparsity runs' seed overlaps are missing"
