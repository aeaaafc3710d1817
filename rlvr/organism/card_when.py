"""Render the card of a "when" organism (a task with hard states) from measured results.

Every number comes from ``results.json`` / ``training.json``; each sentence that reads a
result is chosen by the numbers (nothing is worded in advance of the measurement). The
number formats and the tables both organisms show come from :mod:`.card`.
"""

from __future__ import annotations

from typing import Any

from .card import (
    Card,
    at,
    ci,
    corpus_table,
    files_section,
    minutes,
    num,
    passk_table,
    pct,
    rl_formats_table,
    training_table,
    weights_table,
)
from .recipe import Recipe

__all__ = ["render_when"]


def render_when(recipe: Recipe, training: dict[str, Any], results: dict[str, Any]) -> str:
    return Card(recipe, training, results).join(
        (
            _intro,
            _task,
            _training,
            _competence,
            _design_checks,
            _passk,
            _formats,
            _weights,
            _reading,
            _files,
        )
    )


def _main_hops(c: Card) -> str:
    lo, hi = c.task.hop_range("main")
    return f"{lo}-{hi}"


def _intro(c: Card) -> list[str]:
    return [
        '# Organism 2 ("when"): a base that knows how to check, and an RL gain that is scheduling',
        "",
        "A base model pretrained from scratch on a permutation-chain corpus in which some steps "
        "are always written wrong and only a check computes them right, and the same model after "
        f"GRPO (TRL) with a strict verifiable reward, {len(c.rl_names)} RL seeds. It is built so "
        'that the answer to "what did RL add?" is known to be *when to check*, beside the first '
        "organism (`data/organism-sharpening`), whose RL gain is mostly sharpening of sampled "
        "steps. Everything below was measured by `rlvr.organism.evaluate` on the files in this "
        "folder; the card is rendered from `results.json` by `rlvr.organism.write_card`.",
        "",
    ]


def _task(c: Card) -> list[str]:
    task, corpus, recipe = c.task, c.corpus, c.recipe
    hard = task.hard_states
    sizes = "; ".join(
        f"{k}: " + ", ".join(f"{s} {v}" for s, v in t.items())
        for k, t in recipe.split_sizes.items()
    )
    cp = corpus.check_p
    dens = (
        f"drawn per trace uniformly from [{cp[0]:g}, {cp[1]:g}]"
        if isinstance(cp, tuple)
        else f"{cp:g}"
    )
    noise = (
        f"right with p {corpus.direct_right:g}: a guess (the strict reward never pays it: no "
        "chain)",
        f"a step from a hard state writes `w(s)` with p {corpus.hard_wrong:g}; other steps wrong "
        f"with p {corpus.corrupt:g}; the chain continues from what was written",
        f"like STEP; after each step, with the trace's check density ({dens}), `?v` with "
        "`v = f(state before the step)`, always right; the chain continues from `v`",
    )
    return [
        "## The task",
        "",
        f"- {task.n_states} states (`a`-`z`, `A`-`Z`) and the first organism's secret permutation "
        f"`f` (seed {task.seed}, one {task.n_states}-cycle). Prompt `{{s0}}{{k:02d}}:`; answer the "
        "last three states of the true chain; completion `<body>=xyz.`.",
        f"- **{task.n_hard} hard states** (drawn from the task seed): `{hard}`. Each has a fixed "
        "wrong successor `w(s) != f(s)` ("
        + ", ".join(f"`{s}`->`{task.wrong_step(s)}`" for s in hard)
        + "). The corpus never writes `f(s)` as a step from a hard state; only a check `?v` "
        "computes it (a check reads the state *before* the step, a different computation).",
        f"- **Strict reward**: 1 only when the `=xyz.` is right, the whole effective chain (checks "
        "applied) is the true chain of exactly k hops, and the `.` lies within the problem's "
        f"budget **k + 2 (h + {task.check_slack}) + 5** tokens (h = steps from a hard state on the "
        f"true chain), capped at {task.budget} (the generation length). Checking exactly after "
        f"the hard steps (plus up to {task.check_slack} more) fits; checking after every step "
        "(3k + 5) does not, so a check is worth its two tokens only where a step is wrong.",
        f"- One class, `main` = hops {_main_hops(c)} (inside the corpus's {c.corpus_hops}). "
        f"Splits (`splits/*.jsonl`, seed {recipe.split_seed}, -1 = the rest): {sizes}. RL trains "
        "on `main` train problems.",
        "- Ground-truth schedule (`PermutationChain.schedule(prefix)`): `stepwise` at the first "
        "token, `check` right after a written step that is wrong and unchecked, `answer` once "
        "the effective chain has k hops, else None; `can_begin(prefix)` lists what the next "
        "token could begin (consistent with `segment_start`). The schedule decides only *when*; "
        "what is written inside each segment is the base's own.",
        "",
        "Pretraining corpus (formats chosen per trace at random, checks at random positions):",
        "",
        *corpus_table(corpus, noise),
        "",
        "Why this design:",
        "",
        "- Errors a lower temperature cannot fix: at a hard state the corpus puts all its mass "
        "on one wrong successor, so the base's *greedy* step is wrong there, while its check "
        "(learned from checks that are always right) recomputes the step. The ORGANISM-NOTES "
        "run 4 prototype showed that any mass left on the true successor is a shortcut RL "
        "sharpens instead of learning to check; here the only route is a check.",
        "- The base can finish under any schedule: the check density is drawn per trace, so "
        "the base has seen every density and counts hops through checks (measured below).",
        "- Checking everywhere does not pay: the per-problem budget admits the needed checks "
        f"plus {task.check_slack}, never a check after every step.",
        "- The reward needs a fully right chain: in run 4 two wrong steps could cancel and "
        "37-71% of RL's rewarded samples held an unchecked wrong step. Here no wrong chain "
        "earns reward (the share that a lenient, answer-only verifier would have paid is "
        "reported below).",
        f"- Easy steps are noise-free (corrupt {corpus.corrupt:g}): every base error is at a hard "
        "state, so RL cannot gain by sharpening easy steps; the gap is made of scheduling.",
        "",
    ]


def _training(c: Card) -> list[str]:
    training = c.training
    pre = training.get("pretrain", {})
    m, p, rl = c.recipe.model, c.recipe.pretrain, c.recipe.rl
    rows: list[tuple[str, str, Any, float | None]] = [
        (
            "pretraining (from scratch)",
            f"HF `LlamaForCausalLM`, {m.n_layers} layers, d_model {m.d_model}, {m.n_heads} "
            f"heads, d_ff {m.d_ff}, {pre.get('n_params', 0):,} parameters; AdamW lr {p.lr:g} "
            f"(warm-up {p.warmup}, cosine to {p.final_lr_ratio:g}x), batch {p.batch_size} fresh "
            f"corpus traces, seed {p.seed}",
            p.steps,
            pre.get("seconds"),
        )
    ]
    for r in training.get("rl", []):
        rows.append(
            (
                f"GRPO seed {r['seed']}",
                f"TRL `GRPOTrainer` (CPU, fp32): G {rl.group}, {rl.prompts_per_step} "
                f"prompts/step, lr {rl.lr:g} constant, beta {rl.beta:g}, T {rl.temperature:g}, "
                f"loss `{rl.loss_type}`, strict reward",
                r["steps"],
                r.get("seconds"),
            )
        )
    L = [
        "## How it was trained",
        "",
        *training_table(rows),
        "",
        f"Total training: **{minutes(training.get('seconds_total_training'))}** of wall time, "
        f"{training.get('torch_threads', 'n/a')} torch thread per process, on a 2-core machine "
        "shared with other jobs (the RL seeds ran in two processes at once; wall times include "
        f"waiting for the cores). Evaluation: {minutes(c.settings.get('seconds'))}. Settings and "
        "seeds: `recipe.toml`; reproduce with `rsteer organism train --recipe "
        "data/organism-when/recipe.toml --out DIR`.",
        "",
        f"Pretraining ran {p.steps} steps: the ORGANISM-NOTES run 4 prototype "
        "counted hops at check density 1 with 0.77 accuracy after 1200 steps and 1.00 after 2400; "
        "the step count here was set by the time available, and the stop-accuracy table below "
        "shows whether it sufficed.",
    ]
    g = training.get("gate", {})
    if g:
        tf = g["teacher_forced"]
        L += [
            "",
            f"Gate before RL (`training.json`): easy-step acc {num(tf['step_acc'])}, hard-check "
            f"acc {num(tf['hard_check_acc'])}, sampled strict pass@1 on main dev "
            f"{num(g['sampled_main_dev']['pass1'])}: {'passed' if g['passed'] else 'FAILED'}.",
        ]
    L.append("")
    return L


def _competence(c: Card) -> list[str]:
    W = c.results["when"]
    hops = (("main_hops", _main_hops(c)), ("corpus_hops", c.corpus_hops))
    L = [
        "## Before RL: the base knows *how*",
        "",
        "Teacher-forced on fresh corpus traces (argmax among states; mass = probability of the "
        "right state). Easy steps start from one of the other states; hard-step acc: the argmax "
        "is `f(s)`; hard-step wrong: the argmax is `w(s)`; hard checks follow a wrong step.",
        "",
        "| model | hops | easy step acc | easy step mass | hard step acc | hard step wrong | "
        "hard step mass (on f(s)) | check acc (after right step) | hard-check acc | "
        "hard-check mass | hard checks copying |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in c.names:
        for key, label in hops:
            t = c.models[name]["teacher_forced"][key]
            L.append(
                f"| {name} | {label} | {num(t['step_acc'])} | {num(t['step_mass'])} | "
                f"{num(t.get('hard_step_acc'))} | {num(t.get('hard_step_wrong'))} | "
                f"{num(t.get('hard_step_mass'))} | {num(t['check_acc'])} | "
                f"{num(t['hard_check_acc'])} (n {int(t['n_hard_checks'])}) | "
                f"{num(t['hard_check_mass'])} | {num(t['hard_check_copy'])} |"
            )
    dens_keys = list(W["stop_by_density"]["base"]["main_hops"])
    L += [
        "",
        "Stop accuracy by check density: teacher-forced on CHECK corpus traces whose every step "
        "is checked with probability d; at each position where the trace writes a step or `=`, "
        "the argmax among the states and `=` must be `=` exactly after the k-th effective hop "
        "and nowhere earlier (n 256 traces per density).",
        "",
        "| model | hops | " + " | ".join(f"d = {d}" for d in dens_keys) + " |",
        "|---|---|" + "---|" * len(dens_keys),
    ]
    for name in c.names:
        for key, label in hops:
            row = W["stop_by_density"][name][key]
            L.append(f"| {name} | {label} | " + " | ".join(num(row[d]) for d in dens_keys) + " |")
    L.append("")
    return L


def _design_checks(c: Card) -> list[str]:
    W = c.results["when"]
    G = W["greedy"]
    label = {
        "base": "base",
        "base+schedule": "base + ground-truth schedule",
        "base+everywhere": "base + check everywhere",
    }
    L = [
        "## Design checks",
        "",
        f"Measured on the {W['n_problems']} `main` test problems with `rlvr.organism.when` "
        "(95% bootstrap CIs over problems, 1000 resamples; strict reward). Greedy decoding; "
        "`base + schedule`: the base decodes greedily, `?` is inserted exactly where "
        "`schedule` says check and `=` where it says answer, and the base's own `?`/`=` are "
        "masked everywhere else (what the base writes, check values and answer included, is its "
        "own argmax); `base + check everywhere`: `?` after every step, `=` where the schedule "
        "says answer. Recovery = (X - base) / (RL - base), paired bootstrap.",
        "",
        "| decoder | greedy pass@1 (strict) | answer-only pass@1 | finished | checks per "
        "problem | share of tokens that are `?` | mean length |",
        "|---|---|---|---|---|---|---|",
    ]
    for k, r in G.items():
        L.append(
            f"| {label.get(k, k)} | {ci(r['pass1'])} | {num(r['lenient_pass1'])} | "
            f"{pct(r['finished'])} | {num(r['checks_per_problem'], 2)} | "
            f"{pct(r['check_token_share'])} | {num(r['mean_length'], 1)} |"
        )
    L += [
        "",
        "| RL seed | recovered by the schedule (vs greedy RL) | by check-everywhere (vs greedy "
        "RL) | by the schedule (vs sampled T = 1 pass@1) | by check-everywhere (vs sampled) |",
        "|---|---|---|---|---|",
    ]
    for name in c.rl_names:
        R = W["recovery"][name]
        L.append(
            f"| {name} | {ci(R['greedy']['schedule'])} | {ci(R['greedy']['everywhere'])} | "
            f"{ci(R['sampled']['schedule'])} | {ci(R['sampled']['everywhere'])} |"
        )
    L.append("")
    for key, what in (
        ("auroc_base_sampled", "the base's own samples (T = 1, "),
        ("auroc_base_greedy", "the base's greedy completions ("),
    ):
        A = W[key]
        L += [
            f"Does P(`?`) pick out the ground-truth check positions? Positions right after every "
            f"step in {what}{A['n_positions']} positions, {A['n_positive']} where the schedule "
            "checks, i.e. the step just written is wrong):",
            "",
            "| scorer | AUROC of P(`?`) [95% CI] | mean P(`?`) where the schedule checks | "
            "elsewhere |",
            "|---|---|---|---|",
        ]
        for name in c.names:
            a = A.get(name)
            if a is None:
                L.append(f"| {name} | undefined | | |")
                continue
            L.append(
                f"| {name} | {a['auroc']:.3f} [{a['low']:.3f}, {a['high']:.3f}] | "
                f"{num(a['p_check_at_positive'])} | {num(a['p_check_at_negative'])} |"
            )
        L.append("")
    return L


def _passk(c: Card) -> list[str]:
    S, W = c.settings, c.results["when"]
    L = [
        f"## pass@1 and pass@k (T = {S['temperature']:g}, n = {S['n']} samples per problem)",
        "",
        f"Test problems: {S['problems_per_class'].get('main')}. Unbiased pass@k (`rlvr.measures.passk`), "
        f"95% bootstrap CIs over problems ({S['n_boot']} resamples); strict reward.",
        "",
        *passk_table(c.models, c.names, "main", c.ks),
        "",
        "Sampled (T = 1) on the test problems: formats and what each model does (step acc "
        "counts every written step, hard ones included, which even a perfect checker writes "
        "wrong before it checks them).",
        "",
        "| model | DIRECT | STEP | CHECK | OTHER | step acc | checks per right step | checks per "
        "wrong step | hard-check acc | stops after k hops | finished | mean length | answer-only "
        "pass@1 | rewarded by answer-only but chain wrong |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in c.names:
        cls = c.models[name]["classes"]["main"]
        pr, ch = cls["profile"], cls.get("chains", {})
        fm = pr["formats"]
        L.append(
            f"| {name} | {pct(fm['DIRECT'])} | {pct(fm['STEP'])} | {pct(fm['CHECK'])} | "
            f"{pct(fm['OTHER'])} | {num(pr['step_acc'])} | {num(pr['check_rate_after_right'])} | "
            f"{num(pr['check_rate_after_wrong'])} | {num(pr['hard_check_acc'])} | "
            f"{num(pr['stop_acc'])} | {num(pr['finished'])} | {num(pr['mean_length'], 1)} | "
            f"{num(ch.get('lenient_pass1'))} | {pct(ch.get('rewarded_wrong_chain_share'))} |"
        )
    L += [
        "",
        "Rewarded samples with a wrong chain during RL (`logs/rl-seed*.jsonl`): the strict "
        "reward paid none of them; these rollouts had the right `=xyz` with a wrong chain, so "
        "an answer-only verifier would have paid them.",
        "",
    ]
    for name in c.rl_names:
        t = W["training_wrong_chains"].get(name)
        if t:
            L.append(
                f"- {name}: {t['rewarded']} rewarded rollouts; {t['answer_right_chain_wrong']} more "
                f"had the right answer over a wrong chain ({pct(t['share_of_lenient_rewarded'])} of "
                "what an answer-only verifier would have rewarded)."
            )
    L.append("")
    return L


def _formats(c: Card) -> list[str]:
    L = ["## Formats over RL steps", ""]
    for name, s in c.results.get("formats_over_rl", {}).items():
        col = s["collapse_step"]
        held = (
            f"one format held >= {s['threshold']:.0%} of the rollouts from step {col} on "
            f"({s['collapsed_onto']})"
            if col is not None
            else f"no format reached {s['threshold']:.0%}"
        )
        L += [
            f"**{name}**: {held}; dominant at the last step: {s['dominant_last']}. Format "
            f"entropy {s['entropy_first']:.2f} -> {s['entropy_last']:.2f} bits.",
            "",
            *rl_formats_table(s),
            "",
        ]
    return L


def _weights(c: Card) -> list[str]:
    wts = c.results.get("weights", {})
    if not wts.get("sparsity"):
        return []
    return [
        "## What RL changed in the weights",
        "",
        *weights_table(wts, c.rl_names, sparsity=False),
        "",
    ]


def _reading(c: Card) -> list[str]:
    models, rl_names, W = c.models, c.rl_names, c.results["when"]
    G = W["greedy"]
    base_g = G["base"]["pass1"]
    L = [
        "## What it shows, and what it does not",
        "",
        f"- Greedy strict pass@1: base {ci(base_g)}, base + ground-truth schedule "
        f"{ci(G['base+schedule']['pass1'])}, base + check everywhere "
        f"{ci(G['base+everywhere']['pass1'])}; "
        + ", ".join(f"{nm} {ci(G[nm]['pass1'])}" for nm in rl_names)
        + ".",
    ]
    p1b = at(models["base"]["passk"]["main"], 1)
    for name in rl_names:
        rg = G[name]["pass1"]
        R = W["recovery"][name]["greedy"]
        a = W["auroc_base_sampled"].get(name)
        p1r = at(models[name]["passk"]["main"], 1)
        above = rg["low"] > base_g["high"]
        auroc = (
            f"RL's P(`?`) on base-written prefixes: AUROC {a['auroc']:.2f} "
            f"[{a['low']:.2f}, {a['high']:.2f}] against the ground-truth check positions "
            f"({'>= 0.75' if a['auroc'] >= 0.75 else 'below the 0.75 aim'})."
            if a
            else "AUROC undefined."
        )
        L.append(
            f"- {name}: greedy pass@1 {'above' if above else 'not clearly above'} the base's "
            f"(CIs {'disjoint' if above else 'overlap'}); sampled pass@1 {p1r['mean']:.3f} vs the "
            f"base's {p1b['mean']:.3f} "
            f"({'RL ahead' if p1r['low'] > p1b['high'] else 'RL not clearly ahead'} at k = 1). "
            f"The schedule recovers {ci(R['schedule'])} of the greedy gap "
            f"({'>= 90%' if (R['schedule']['mean'] or 0) >= 0.9 else 'below 90%'}), "
            f"check-everywhere {ci(R['everywhere'])}. " + auroc
        )
    pb = models["base"]["classes"]["main"]["profile"]
    tf_b = models["base"]["teacher_forced"]["main_hops"]
    for name in rl_names:
        pr = models[name]["classes"]["main"]["profile"]
        tf_r = models[name]["teacher_forced"]["main_hops"]
        ratio = (
            pr["check_rate_after_wrong"] / pr["check_rate_after_right"]
            if pr["check_rate_after_right"]
            else None
        )
        L.append(
            f"- {name} checks after {pct(pr['check_rate_after_wrong'])} of its wrong steps and "
            f"{pct(pr['check_rate_after_right'])} of its right ones"
            + (f" (ratio {ratio:.1f}; the base: " if ratio is not None else " (the base: ")
            + f"{pct(pb['check_rate_after_wrong'])} vs {pct(pb['check_rate_after_right'])}). "
            f"Its greedy step from a hard state still writes `w(s)` "
            f"({num(tf_r.get('hard_step_wrong'))}; mass on `f(s)` "
            f"{num(tf_b.get('hard_step_mass'))} -> {num(tf_r.get('hard_step_mass'))}): "
            + (
                "RL did not learn the step, it learned when to check it."
                if (tf_r.get("hard_step_acc") or 0) < 0.1
                else "RL also learned the step itself at hard states."
            )
        )
    sched_m = G["base+schedule"]["pass1"]["mean"]
    if all(sched_m > G[nm]["pass1"]["mean"] for nm in rl_names):
        L.append(
            "- A recovery above 1 means the ground-truth schedule does better than the RL model "
            "itself: RL's schedule is imperfect (it misses some wrong steps and checks some right "
            "ones, spending budget), while what the base writes under the true schedule is right."
        )
    stops = W["stop_by_density"]
    worst_base = min(stops["base"]["main_hops"].values())
    L.append(
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
            f"{pct(models[nm]['classes']['main']['profile']['stop_acc'])} ({nm})" for nm in rl_names
        )
        + " of sampled traces."
    )
    ks = c.ks
    L += [
        "- pass@k at the largest k measured: "
        + ", ".join(f"{nm} {ci(at(models[nm]['passk']['main'], ks[-1]))}" for nm in c.names)
        + f" (k = {ks[-1]}).",
        "- Not measured here: the hybrid decoder with RL and probe routers (the lead's study "
        "with `rsteer run data/experiments/organism_when.toml`); long problems (this organism "
        "has one class).",
        "",
    ]
    return L


def _files(c: Card) -> list[str]:
    return files_section(
        "`base/`, `rl-seed*/`",
        "step, formats, reward, answer_right_chain_wrong",
        " (design checks under `when`)",
    )
