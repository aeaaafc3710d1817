"""The "when" organism's card, the sections on what RL did: the design checks (the base
under the ground-truth schedule, recovery, AUROC of P(``?``)), pass@k and sampled profiles,
formats over RL steps, the weights RL changed, the reading of it all; then the files.
:func:`.when.render_when` puts them after the sections on the organism itself.
"""

from __future__ import annotations

from .parts import (
    Card,
    at,
    ci,
    files_section,
    num,
    passk_table,
    pct,
    rl_formats_table,
    weights_table,
)

__all__ = ["RL_SECTIONS"]


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


# in the card's order
RL_SECTIONS = (_design_checks, _passk, _formats, _weights, _reading, _files)
