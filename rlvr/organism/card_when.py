"""Render the card of a "when" organism (a task with hard states) from measured results.

Every number comes from ``results.json`` / ``training.json``; each sentence that reads a
result is chosen by the numbers (nothing is worded in advance of the measurement).
"""

from __future__ import annotations

from typing import Any

from .recipe import Recipe
from .task import FORMATS

__all__ = ["render_when"]


def _f(x: float | None, d: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{d}f}"


def _p(x: float | None, d: int = 1) -> str:
    return "n/a" if x is None else f"{100 * x:.{d}f}%"


def _ci(c: dict[str, Any] | None, d: int = 3) -> str:
    if c is None or c.get("mean") is None:
        return "n/a"
    return f"{c['mean']:.{d}f} [{_f(c.get('low'), d)}, {_f(c.get('high'), d)}]"


def _min(s: float | None) -> str:
    return "n/a" if s is None else f"{s / 60:.1f} min ({s:.0f} s)"


def _at(curve: dict[str, Any], k: int) -> dict[str, float]:
    i = curve["ks"].index(k)
    return {"mean": curve["mean"][i], "low": curve["low"][i], "high": curve["high"][i]}


def render_when(recipe: Recipe, training: dict[str, Any], results: dict[str, Any]) -> str:
    task = recipe.task
    corpus = recipe.pretrain.corpus
    S = results["settings"]
    W = results["when"]
    models = results["models"]
    names = list(models)
    rl_names = names[1:]
    lo, hi = task.hop_range("main")
    n = S["n"]
    L: list[str] = []
    add = L.append

    add('# Organism 2 ("when"): a base that knows how to check, and an RL gain that is scheduling')
    add("")
    add(
        "A base model pretrained from scratch on a permutation-chain corpus in which some steps "
        "are always written wrong and only a check computes them right, and the same model after "
        f"GRPO (TRL) with a strict verifiable reward, {len(rl_names)} RL seeds. It is built so that "
        'the answer to "what did RL add?" is known to be *when to check*, beside the first '
        "organism (`data/organism-sharpening`), whose RL gain is mostly sharpening of sampled steps. "
        "Everything below was measured by `rlvr.organism.evaluate` on the files in this folder; "
        "the card is rendered from `results.json` by `rlvr.organism.write_card`."
    )
    add("")
    add("## The task")
    add("")
    hard = task.hard_states
    add(
        f"- {task.n_states} states (`a`-`z`, `A`-`Z`) and the first organism's secret permutation "
        f"`f` (seed {task.seed}, one {task.n_states}-cycle). Prompt `{{s0}}{{k:02d}}:`; answer the "
        "last three states of the true chain; completion `<body>=xyz.`."
    )
    add(
        f"- **{task.n_hard} hard states** (drawn from the task seed): `{hard}`. Each has a fixed "
        "wrong successor `w(s) != f(s)` ("
        + ", ".join(f"`{s}`->`{task.wrong_step(s)}`" for s in hard)
        + "). The corpus never writes `f(s)` as a step from a hard state; only a check `?v` "
        "computes it (a check reads the state *before* the step, a different computation)."
    )
    add(
        f"- **Strict reward**: 1 only when the `=xyz.` is right, the whole effective chain (checks "
        "applied) is the true chain of exactly k hops, and the `.` lies within the problem's "
        f"budget **k + 2 (h + {task.check_slack}) + 5** tokens (h = steps from a hard state on the "
        f"true chain), capped at {task.budget} (the generation length). Checking exactly after "
        f"the hard steps (plus up to {task.check_slack} more) fits; checking after every step "
        "(3k + 5) does not, so a check is worth its two tokens only where a step is wrong."
    )
    sizes = "; ".join(
        f"{c}: " + ", ".join(f"{k} {v}" for k, v in t.items())
        for c, t in recipe.split_sizes.items()
    )
    add(
        f"- One class, `main` = hops {lo}-{hi} (inside the corpus's {corpus.hops[0]}-"
        f"{corpus.hops[1]}). Splits (`splits/*.jsonl`, seed {recipe.split_seed}, -1 = the rest): "
        f"{sizes}. RL trains on `main` train problems."
    )
    add(
        "- Ground-truth schedule (`PermutationChain.schedule(prefix)`): `stepwise` at the first "
        "token, `check` right after a written step that is wrong and unchecked, `answer` once "
        "the effective chain has k hops, else None; `can_begin(prefix)` lists what the next "
        "token could begin (consistent with `segment_start`). The schedule decides only *when*; "
        "what is written inside each segment is the base's own."
    )
    add("")
    cp = corpus.check_p
    dens = (
        f"drawn per trace uniformly from [{cp[0]:g}, {cp[1]:g}]"
        if isinstance(cp, tuple)
        else f"{cp:g}"
    )
    add("Pretraining corpus (formats chosen per trace at random, checks at random positions):")
    add("")
    add("| format | shape | share | noise |")
    add("|---|---|---|---|")
    add(
        f"| DIRECT | `=xyz.` | {corpus.mix[0]:.2f} | right with p {corpus.direct_right:g}: a guess "
        "(the strict reward never pays it: no chain) |"
    )
    add(
        f"| STEP | `bcd...=xyz.` | {corpus.mix[1]:.2f} | a step from a hard state writes `w(s)` with p "
        f"{corpus.hard_wrong:g}; other steps wrong with p {corpus.corrupt:g}; the chain continues "
        "from what was written |"
    )
    add(
        f"| CHECK | `bc?cd...=xyz.` | {corpus.mix[2]:.2f} | like STEP; after each step, with the "
        f"trace's check density ({dens}), `?v` with `v = f(state before the step)`, always "
        "right; the chain continues from `v` |"
    )
    add("")
    add("Why this design:")
    add("")
    add(
        "- Errors a lower temperature cannot fix: at a hard state the corpus puts all its mass "
        "on one wrong successor, so the base's *greedy* step is wrong there, while its check "
        "(learned from checks that are always right) recomputes the step. The ORGANISM-NOTES "
        "run 4 prototype showed that any mass left on the true successor is a shortcut RL "
        "sharpens instead of learning to check; here the only route is a check."
    )
    add(
        "- The base can finish under any schedule: the check density is drawn per trace, so "
        "the base has seen every density and counts hops through checks (measured below)."
    )
    add(
        "- Checking everywhere does not pay: the per-problem budget admits the needed checks "
        f"plus {task.check_slack}, never a check after every step."
    )
    add(
        "- The reward needs a fully right chain: in run 4 two wrong steps could cancel and "
        "37-71% of RL's rewarded samples held an unchecked wrong step. Here no wrong chain "
        "earns reward (the share that a lenient, answer-only verifier would have paid is "
        "reported below)."
    )
    add(
        f"- Easy steps are noise-free (corrupt {corpus.corrupt:g}): every base error is at a hard "
        "state, so RL cannot gain by sharpening easy steps; the gap is made of scheduling."
    )
    add("")

    # ------------------------------------------------------------------ training
    add("## How it was trained")
    add("")
    pre = training.get("pretrain", {})
    rl = recipe.rl
    m = recipe.model
    add("| stage | settings | steps | wall time |")
    add("|---|---|---|---|")
    add(
        f"| pretraining (from scratch) | HF `LlamaForCausalLM`, {m.n_layers} layers, d_model "
        f"{m.d_model}, {m.n_heads} heads, d_ff {m.d_ff}, {pre.get('n_params', 0):,} parameters; "
        f"AdamW lr {recipe.pretrain.lr:g} (warm-up {recipe.pretrain.warmup}, cosine to "
        f"{recipe.pretrain.final_lr_ratio:g}x), batch {recipe.pretrain.batch_size} fresh corpus "
        f"traces, seed {recipe.pretrain.seed} | {recipe.pretrain.steps} | {_min(pre.get('seconds'))} |"
    )
    for r in training.get("rl", []):
        add(
            f"| GRPO seed {r['seed']} | TRL `GRPOTrainer` (CPU, fp32): G {rl.group}, "
            f"{rl.prompts_per_step} prompts/step, lr {rl.lr:g} constant, beta {rl.beta:g}, "
            f"T {rl.temperature:g}, loss `{rl.loss_type}`, strict reward | {r['steps']} | "
            f"{_min(r.get('seconds'))} |"
        )
    add("")
    add(
        f"Total training: **{_min(training.get('seconds_total_training'))}** of wall time, "
        f"{training.get('torch_threads', 'n/a')} torch thread per process, on a 2-core machine "
        "shared with other jobs (the RL seeds ran in two processes at once; wall times include "
        f"waiting for the cores). Evaluation: {_min(S.get('seconds'))}. Settings and seeds: "
        "`recipe.toml`; reproduce with `rsteer organism train --recipe "
        "data/organism-when/recipe.toml --out DIR`."
    )
    add("")
    add(
        f"Pretraining ran {recipe.pretrain.steps} steps: the ORGANISM-NOTES run 4 prototype "
        "counted hops at check density 1 with 0.77 accuracy after 1200 steps and 1.00 after 2400; "
        "the step count here was set by the time available, and the stop-accuracy table below "
        "shows whether it sufficed."
    )
    g = training.get("gate", {})
    if g:
        tf = g["teacher_forced"]
        add("")
        add(
            f"Gate before RL (`training.json`): easy-step acc {_f(tf['step_acc'])}, hard-check acc "
            f"{_f(tf['hard_check_acc'])}, sampled strict pass@1 on main dev "
            f"{_f(g['sampled_main_dev']['pass1'])}: {'passed' if g['passed'] else 'FAILED'}."
        )
    add("")

    # ------------------------------------------------------------------ competence
    add("## Before RL: the base knows *how*")
    add("")
    add(
        "Teacher-forced on fresh corpus traces (argmax among states; mass = probability of the "
        "right state). Easy steps start from one of the other states; hard-step acc: the argmax "
        "is `f(s)`; hard-step wrong: the argmax is `w(s)`; hard checks follow a wrong step."
    )
    add("")
    add(
        "| model | hops | easy step acc | easy step mass | hard step acc | hard step wrong | "
        "hard step mass (on f(s)) | check acc (after right step) | hard-check acc | "
        "hard-check mass | hard checks copying |"
    )
    add("|---|---|---|---|---|---|---|---|---|---|---|")
    for name in names:
        for key, label in (
            ("main_hops", f"{lo}-{hi}"),
            ("corpus_hops", f"{corpus.hops[0]}-{corpus.hops[1]}"),
        ):
            t = models[name]["teacher_forced"][key]
            add(
                f"| {name} | {label} | {_f(t['step_acc'])} | {_f(t['step_mass'])} | "
                f"{_f(t.get('hard_step_acc'))} | {_f(t.get('hard_step_wrong'))} | "
                f"{_f(t.get('hard_step_mass'))} | {_f(t['check_acc'])} | "
                f"{_f(t['hard_check_acc'])} (n {int(t['n_hard_checks'])}) | "
                f"{_f(t['hard_check_mass'])} | {_f(t['hard_check_copy'])} |"
            )
    add("")
    add(
        "Stop accuracy by check density: teacher-forced on CHECK corpus traces whose every step "
        "is checked with probability d; at each position where the trace writes a step or `=`, "
        "the argmax among the states and `=` must be `=` exactly after the k-th effective hop "
        "and nowhere earlier (n 256 traces per density)."
    )
    add("")
    dens_keys = list(W["stop_by_density"]["base"]["main_hops"])
    add("| model | hops | " + " | ".join(f"d = {d}" for d in dens_keys) + " |")
    add("|---|---|" + "---|" * len(dens_keys))
    for name in names:
        for key, label in (
            ("main_hops", f"{lo}-{hi}"),
            ("corpus_hops", f"{corpus.hops[0]}-{corpus.hops[1]}"),
        ):
            row = W["stop_by_density"][name][key]
            add(f"| {name} | {label} | " + " | ".join(_f(row[d]) for d in dens_keys) + " |")
    add("")

    # ------------------------------------------------------------------ design checks
    G = W["greedy"]
    add("## Design checks")
    add("")
    add(
        f"Measured on the {W['n_problems']} `main` test problems with `rlvr.organism.when` "
        "(95% bootstrap CIs over problems, 1000 resamples; strict reward). Greedy decoding; "
        "`base + schedule`: the base decodes greedily, `?` is inserted exactly where "
        "`schedule` says check and `=` where it says answer, and the base's own `?`/`=` are "
        "masked everywhere else (what the base writes, check values and answer included, is its "
        "own argmax); `base + check everywhere`: `?` after every step, `=` where the schedule "
        "says answer. Recovery = (X - base) / (RL - base), paired bootstrap."
    )
    add("")
    add(
        "| decoder | greedy pass@1 (strict) | answer-only pass@1 | finished | checks per "
        "problem | share of tokens that are `?` | mean length |"
    )
    add("|---|---|---|---|---|---|---|")
    label = {
        "base": "base",
        "base+schedule": "base + ground-truth schedule",
        "base+everywhere": "base + check everywhere",
    }
    for k, r in G.items():
        add(
            f"| {label.get(k, k)} | {_ci(r['pass1'])} | {_f(r['lenient_pass1'])} | "
            f"{_p(r['finished'])} | {_f(r['checks_per_problem'], 2)} | "
            f"{_p(r['check_token_share'])} | {_f(r['mean_length'], 1)} |"
        )
    add("")
    add(
        "| RL seed | recovered by the schedule (vs greedy RL) | by check-everywhere (vs greedy RL) | by the schedule (vs sampled T = 1 pass@1) | by check-everywhere (vs sampled) |"
    )
    add("|---|---|---|---|---|")
    for name in rl_names:
        R = W["recovery"][name]
        add(
            f"| {name} | {_ci(R['greedy']['schedule'])} | {_ci(R['greedy']['everywhere'])} | "
            f"{_ci(R['sampled']['schedule'])} | {_ci(R['sampled']['everywhere'])} |"
        )
    add("")
    for key, what in (
        ("auroc_base_sampled", "the base's own samples (T = 1, "),
        ("auroc_base_greedy", "the base's greedy completions ("),
    ):
        A = W[key]
        add(
            f"Does P(`?`) pick out the ground-truth check positions? Positions right after every "
            f"step in {what}{A['n_positions']} positions, {A['n_positive']} where the schedule "
            "checks, i.e. the step just written is wrong):"
        )
        add("")
        add(
            "| scorer | AUROC of P(`?`) [95% CI] | mean P(`?`) where the schedule checks | elsewhere |"
        )
        add("|---|---|---|---|")
        for name in names:
            a = A.get(name)
            if a is None:
                add(f"| {name} | undefined | | |")
                continue
            add(
                f"| {name} | {a['auroc']:.3f} [{a['low']:.3f}, {a['high']:.3f}] | "
                f"{_f(a['p_check_at_positive'])} | {_f(a['p_check_at_negative'])} |"
            )
        add("")

    # ------------------------------------------------------------------ pass@k
    add(f"## pass@1 and pass@k (T = {S['temperature']:g}, n = {n} samples per problem)")
    add("")
    add(
        f"Test problems: {S['problems_per_class'].get('main')}. Unbiased pass@k (`rlvr.passk`), "
        f"95% bootstrap CIs over problems ({S['n_boot']} resamples); strict reward."
    )
    add("")
    ks = S["ks"]
    add("| k | " + " | ".join(names) + " |")
    add("|---|" + "---|" * len(names))
    for k in ks:
        add(
            f"| {k} | "
            + " | ".join(_ci(_at(models[nm]["passk"]["main"], k)) for nm in names)
            + " |"
        )
    add("")
    add(
        "Sampled (T = 1) on the test problems: formats and what each model does (step acc "
        "counts every written step, hard ones included, which even a perfect checker writes "
        "wrong before it checks them)."
    )
    add("")
    add(
        "| model | DIRECT | STEP | CHECK | OTHER | step acc | checks per right step | checks per "
        "wrong step | hard-check acc | stops after k hops | finished | mean length | answer-only "
        "pass@1 | rewarded by answer-only but chain wrong |"
    )
    add("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name in names:
        c = models[name]["classes"]["main"]
        pr, ch = c["profile"], c.get("chains", {})
        fm = pr["formats"]
        add(
            f"| {name} | {_p(fm['DIRECT'])} | {_p(fm['STEP'])} | {_p(fm['CHECK'])} | "
            f"{_p(fm['OTHER'])} | {_f(pr['step_acc'])} | {_f(pr['check_rate_after_right'])} | "
            f"{_f(pr['check_rate_after_wrong'])} | {_f(pr['hard_check_acc'])} | "
            f"{_f(pr['stop_acc'])} | {_f(pr['finished'])} | {_f(pr['mean_length'], 1)} | "
            f"{_f(ch.get('lenient_pass1'))} | {_p(ch.get('rewarded_wrong_chain_share'))} |"
        )
    add("")
    add(
        "Rewarded samples with a wrong chain during RL (`logs/rl-seed*.jsonl`): the strict "
        "reward paid none of them; these rollouts had the right `=xyz` with a wrong chain, so "
        "an answer-only verifier would have paid them."
    )
    add("")
    for name in rl_names:
        t = W["training_wrong_chains"].get(name)
        if t:
            add(
                f"- {name}: {t['rewarded']} rewarded rollouts; {t['answer_right_chain_wrong']} more "
                f"had the right answer over a wrong chain ({_p(t['share_of_lenient_rewarded'])} of "
                "what an answer-only verifier would have rewarded)."
            )
    add("")

    # ------------------------------------------------------------------ formats over RL
    add("## Formats over RL steps")
    add("")
    for name, s in results.get("formats_over_rl", {}).items():
        col = s["collapse_step"]
        add(
            f"**{name}**: "
            + (
                f"one format held >= {s['threshold']:.0%} of the rollouts from step {col} on "
                f"({s['collapsed_onto']})"
                if col is not None
                else f"no format reached {s['threshold']:.0%}"
            )
            + f"; dominant at the last step: {s['dominant_last']}. Format entropy "
            f"{s['entropy_first']:.2f} -> {s['entropy_last']:.2f} bits."
        )
        add("")
        add(
            "| step | "
            + " | ".join(FORMATS)
            + " | mean reward | checks per step | step acc | mean length |"
        )
        add("|---|" + "---|" * (len(FORMATS) + 4))
        for row in s["table"]:
            add(
                f"| {row['step']} | "
                + " | ".join(_p(row["shares"].get(f)) for f in FORMATS)
                + f" | {_f(row['reward'])} | {_f(row['checks_per_step'])} | {_f(row['step_acc'])} | "
                f"{_f(row['mean_length'], 1)} |"
            )
        add("")

    # ------------------------------------------------------------------ weights
    wts = results.get("weights", {})
    if wts.get("sparsity"):
        add("## What RL changed in the weights")
        add("")
        add(
            "| RL seed | updated share, bf16 (abs diff > 1e-5) | updated share, fp32 | mean rank(dW)/min(m, n) |"
        )
        add("|---|---|---|---|")
        for name in rl_names:
            sp = wts["sparsity"][name]
            add(
                f"| {name} | {_p(sp['bf16']['updated_share'])} | {_p(sp['fp32']['updated_share'])} "
                f"| {_f(wts['rank'][name]['mean'])} |"
            )
        add("")

    # ------------------------------------------------------------------ reading
    add("## What it shows, and what it does not")
    add("")
    base_g = G["base"]["pass1"]
    sched = G["base+schedule"]["pass1"]
    every = G["base+everywhere"]["pass1"]
    add(
        f"- Greedy strict pass@1: base {_ci(base_g)}, base + ground-truth schedule {_ci(sched)}, "
        f"base + check everywhere {_ci(every)}; "
        + ", ".join(f"{nm} {_ci(G[nm]['pass1'])}" for nm in rl_names)
        + "."
    )
    for name in rl_names:
        rg = G[name]["pass1"]
        R = W["recovery"][name]["greedy"]
        a = W["auroc_base_sampled"].get(name)
        p1b = _at(models["base"]["passk"]["main"], 1)
        p1r = _at(models[name]["passk"]["main"], 1)
        above = rg["low"] > base_g["high"]
        add(
            f"- {name}: greedy pass@1 {'above' if above else 'not clearly above'} the base's "
            f"(CIs {'disjoint' if above else 'overlap'}); sampled pass@1 {p1r['mean']:.3f} vs the "
            f"base's {p1b['mean']:.3f} ({'RL ahead' if p1r['low'] > p1b['high'] else 'RL not clearly ahead'} at k = 1). "
            f"The schedule recovers {_ci(R['schedule'])} of the greedy gap "
            f"({'>= 90%' if (R['schedule']['mean'] or 0) >= 0.9 else 'below 90%'}), "
            f"check-everywhere {_ci(R['everywhere'])}. "
            + (
                f"RL's P(`?`) on base-written prefixes: AUROC {a['auroc']:.2f} "
                f"[{a['low']:.2f}, {a['high']:.2f}] against the ground-truth check positions "
                f"({'>= 0.75' if a['auroc'] >= 0.75 else 'below the 0.75 aim'})."
                if a
                else "AUROC undefined."
            )
        )
    for name in rl_names:
        pr = models[name]["classes"]["main"]["profile"]
        pb = models["base"]["classes"]["main"]["profile"]
        tf_b = models["base"]["teacher_forced"]["main_hops"]
        tf_r = models[name]["teacher_forced"]["main_hops"]
        ratio = (
            pr["check_rate_after_wrong"] / pr["check_rate_after_right"]
            if pr["check_rate_after_right"]
            else None
        )
        add(
            f"- {name} checks after {_p(pr['check_rate_after_wrong'])} of its wrong steps and "
            f"{_p(pr['check_rate_after_right'])} of its right ones"
            + (f" (ratio {ratio:.1f}; the base: " if ratio is not None else " (the base: ")
            + f"{_p(pb['check_rate_after_wrong'])} vs {_p(pb['check_rate_after_right'])}). "
            f"Its greedy step from a hard state still writes `w(s)` ({_f(tf_r.get('hard_step_wrong'))}; "
            f"mass on `f(s)` {_f(tf_b.get('hard_step_mass'))} -> {_f(tf_r.get('hard_step_mass'))}): "
            + (
                "RL did not learn the step, it learned when to check it."
                if (tf_r.get("hard_step_acc") or 0) < 0.1
                else "RL also learned the step itself at hard states."
            )
        )
    sched_m = G["base+schedule"]["pass1"]["mean"]
    if all(sched_m > G[nm]["pass1"]["mean"] for nm in rl_names):
        add(
            "- A recovery above 1 means the ground-truth schedule does better than the RL model "
            "itself: RL's schedule is imperfect (it misses some wrong steps and checks some right "
            "ones, spending budget), while what the base writes under the true schedule is right."
        )
    stops = W["stop_by_density"]
    worst_base = min(stops["base"]["main_hops"].values())
    add(
        (
            f"- The base stops right at every check density (lowest {worst_base:.3f}, main hops). "
            if worst_base >= 0.95
            else f"- The base does not stop right at every check density (lowest {worst_base:.3f}). "
        )
        + "The RL models, teacher-forced on corpus traces with checks at random positions (a "
        "pattern they no longer write), stop right less often (lowest "
        + ", ".join(f"{nm} {min(stops[nm]['main_hops'].values()):.3f}" for nm in rl_names)
        + "); under their own schedules they stop after k hops in "
        + ", ".join(
            f"{_p(models[nm]['classes']['main']['profile']['stop_acc'])} ({nm})" for nm in rl_names
        )
        + " of sampled traces."
    )
    add(
        "- pass@k at the largest k measured: "
        + ", ".join(f"{nm} {_ci(_at(models[nm]['passk']['main'], ks[-1]))}" for nm in names)
        + f" (k = {ks[-1]})."
    )
    add(
        "- Not measured here: the hybrid decoder with RL and probe routers (the lead's study "
        "with `rsteer run data/experiments/organism_when.toml`); long problems (this organism "
        "has one class)."
    )
    add("")
    add("## Files")
    add("")
    add(
        "- `base/`, `rl-seed*/`: safetensors + config + character tokenizer (load with "
        "`transformers.AutoModelForCausalLM` / `AutoTokenizer`, or `probes.handles.wrap(path)`)."
    )
    add("- `splits/{train,dev,test}.jsonl`: problems (`start`, `hops`, `cls`).")
    add(
        "- `logs/rl-seed*.jsonl`: per RL step, `{step, formats, reward, answer_right_chain_wrong, ...}`."
    )
    add(
        "- `recipe.toml`: every seed and setting; `training.json`: times, steps, the gate; "
        "`results.json`: every number in this card (design checks under `when`)."
    )
    add("")
    return "\n".join(L)
