"""The first organism's card, the sections on what RL did: pass@k, the crossover of base
and RL, formats over RL steps, the weights RL changed, the summary; then the files.
:func:`.sharpening.render` puts them after the sections on the organism itself.
"""

from __future__ import annotations

from ..task import FORMATS
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


def _passk(c: Card) -> list[str]:
    S, models, classes = c.settings, c.models, c.classes
    probs = ", ".join(f"{k}: {v}" for k, v in S["problems_per_class"].items())
    L = [
        f"## pass@1 and pass@k (T = {S['temperature']}, n = {S['n']} samples per problem)",
        "",
        f"Test problems per class: {probs}. Unbiased pass@k (`rlvr.measures.passk`), 95% bootstrap CIs "
        f"over problems ({S['n_boot']} resamples). Greedy = temperature 0, one sample.",
        "",
        "| model | "
        + " | ".join(f"pass@1 {k}" for k in [*classes, "all"])
        + " | "
        + " | ".join(f"greedy {k}" for k in classes)
        + " |",
        "|---|" + "---|" * (2 * len(classes) + 1),
    ]
    for name in c.names:
        row = [ci(at(models[name]["passk"][k], 1)) for k in [*classes, "all"]]
        row += [num(models[name]["classes"][k]["greedy_test"]) for k in classes]
        L.append(f"| {name} | " + " | ".join(row) + " |")
    L.append("")
    for cls in [*classes, "all"]:
        L += [f"pass@k, class `{cls}`:", "", *passk_table(models, c.names, cls, c.ks), ""]
    by_hops = "; ".join(
        f"{cls}: "
        + ", ".join(
            f"k={h} {num(v, 3)}" for h, v in models["base"]["classes"][cls]["pass1_by_hops"].items()
        )
        for cls in classes
    )
    return [*L, f"Base pass@1 by hop count (test problems): {by_hops}", ""]


def _crossover(c: Card) -> list[str]:
    ks = c.ks
    L = [
        "## Crossover: does the base overtake RL at large k?",
        "",
        "k* is the smallest k where mean base pass@k >= mean RL pass@k (`rlvr.measures.passk.crossover`, "
        "paired bootstrap over problems); a tie at saturation (both at 1.000) counts as k*. "
        "'base > RL' is the smallest k where the 95% CI of base - RL lies above 0.",
        "",
        "| RL seed | class | k* | 95% CI of k* | resamples crossing | base > RL from k | "
        f"base - RL at k = 1 | base - RL at k = {ks[-1]} | "
        "coverage both / base-only / RL-only / neither |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    sig: list[tuple[str, str, int]] = []
    ties: list[tuple[str, str, int]] = []
    for name in c.rl_names:
        for cls in [*c.classes, "all"]:
            comp = c.results["comparisons"][name][cls]
            x, cov = comp["crossover"], comp["coverage"]
            above = [k for k, lo in zip(x["ks"], x["diff_low"]) if lo > 0]
            k_sig = above[0] if above else None
            d0, d1 = (
                ci({"mean": x["diff"][i], "low": x["diff_low"][i], "high": x["diff_high"][i]})
                for i in (0, -1)
            )
            k_ci = "n/a" if x["ci_low"] is None else f"[{x['ci_low']}, {x['ci_high']}]"
            k_star = x["k_star"] if x["k_star"] is not None else "none"
            counts = " / ".join(
                str(cov[key]["count"]) for key in ("both", "base_only", "rl_only", "neither")
            )
            L.append(
                f"| {name} | {cls} | {k_star} | {k_ci} | {pct(x['p_exists'])} | "
                f"{k_sig if k_sig is not None else 'never'} | {d0} | {d1} | {counts} |"
            )
            if k_sig is not None:
                sig.append((name, cls, k_sig))
            elif x["k_star"] is not None:
                ties.append((name, cls, x["k_star"]))
    L.append("")
    if sig:
        L.append(
            "The base is significantly above RL: "
            + "; ".join(
                f"{nm} on `{cls}` from k = {k}" + (" (already at k = 1)" if k == ks[0] else "")
                for nm, cls, k in sig
            )
            + "."
        )
    if ties:
        L.append(
            "The base only ties RL (no significant difference): "
            + "; ".join(f"{nm} on `{cls}` from k = {k}" for nm, cls, k in ties)
            + "."
        )
    if not sig and not ties:
        L.append(
            f"No crossover: RL pass@k stays above the base's up to k = {ks[-1]} in every class "
            "and seed."
        )
    L.append("")
    return L


def _formats(c: Card) -> list[str]:
    r = c.recipe.rl
    fo = c.results.get("formats_over_rl", {})
    L = [
        "## Formats over RL steps",
        "",
        f"Shares of the rollouts' formats per RL step (`logs/rl-seed*.jsonl`, "
        f"{r.prompts_per_step * r.group} rollouts per step; table rows pool 5 steps around the "
        "step shown).",
        "",
    ]
    for name, fs in fo.items():
        if fs["collapse_step"] is not None:
            head = (
                f"**{name}**: one format held >= {pct(fs['threshold'], 0)} of the rollouts from "
                f"step {fs['collapse_step']} on (first reached; collapsed onto "
                f"{fs['collapsed_onto']}); dominant at the last step: {fs['dominant_last']}. "
            )
        else:
            head = (
                f"**{name}**: no format reached {pct(fs['threshold'], 0)} of a step's rollouts; "
                f"dominant at the last step: {fs['dominant_last']}. "
            )
        entropy = f"Format entropy {fs['entropy_first']:.2f} -> {fs['entropy_last']:.2f} bits."
        L += [head + entropy, "", *rl_formats_table(fs), ""]
    winners = {fs["collapsed_onto"] for fs in fo.values()}
    if len(fo) > 1 and None not in winners:
        if len(winners) == 1:
            L.append(
                f"Every RL seed collapsed onto the same format ({winners.pop()}): the winner did "
                "not depend on the seed here."
            )
        else:
            L.append(
                "The RL seeds collapsed onto different formats ("
                + ", ".join(f"{nm}: {fs['collapsed_onto']}" for nm, fs in fo.items())
                + "): the winning format depended on the seed."
            )
        L.append("")
    return L


def _weights(c: Card) -> list[str]:
    w = c.results["weights"]
    L = ["## What RL changed in the weights", "", *weights_table(w, c.rl_names, sparsity=True), ""]
    for dtype, ov in w.get("overlap", {}).items():
        a, b = ov["pair"]
        L.append(
            f"Seed overlap ({dtype}): of the parameters {a} updated, {pct(ov['overlap_1'])} were "
            f"also updated by {b} (chance {pct(ov['chance_1'])}); of {b}'s, {pct(ov['overlap_2'])} "
            f"(chance {pct(ov['chance_2'])})."
        )
    bf = [w["sparsity"][nm]["bf16"]["updated_share"] for nm in c.rl_names]
    reading = (
        "RL updated most parameters even in bf16: the sparse-subnetwork picture of large "
        "models does not appear here."
        if bf and min(bf) > 0.5
        else "RL left a large share of parameters unchanged in bf16."
    )
    return [*L, "", "At this model size and learning rate " + reading, ""]


def _summary(c: Card) -> list[str]:
    models, classes, ks, main = c.models, c.classes, c.ks, c.main
    L = ["## What the organism shows, and what it does not", ""]
    for cls in classes:
        for name in c.names:
            curve = models[name]["passk"][cls]
            parts = [f"pass@{k} {ci(at(curve, k))}" for k in (1, 16, ks[-1]) if k in ks]
            L.append(f"- {name} on `{cls}`: " + ", ".join(parts) + ".")
    L.append("")
    bpr = models["base"]["classes"][main]["profile"]
    for name in c.rl_names:
        pr = models[name]["classes"][main]["profile"]
        fs = c.results.get("formats_over_rl", {}).get(name)
        sharpened = (
            pr["step_acc"] is not None
            and bpr["step_acc"] is not None
            and pr["step_acc"] - bpr["step_acc"] > 0.05
        )
        L.append(
            f"- {name}: sampled step accuracy on `{main}` {num(bpr['step_acc'])} (base) -> "
            f"{num(pr['step_acc'])}"
            + (
                " (RL sharpened a step whose greedy version the base already runs)"
                if sharpened
                else " (no sharpening)"
            )
            + "; formats "
            + ", ".join(f"{f} {pct(pr['formats'][f])}" for f in FORMATS)
            + (
                f"; one format above {pct(fs['threshold'], 0)} from RL step {fs['collapse_step']} "
                f"({fs['collapsed_onto']})"
                if fs and fs["collapse_step"] is not None
                else "; no format collapse"
            )
            + "."
        )
    for cls in classes:
        greedy = models["base"]["classes"][cls]["greedy_test"]
        L.append(
            f"- Greedy (T = 0) accuracy on `{cls}`: "
            + ", ".join(f"{nm} {num(models[nm]['classes'][cls]['greedy_test'])}" for nm in c.names)
            + " (the base's greedy steps are "
            + (
                "right: its T = 1 failures are sampling noise)."
                if greedy > 0.9
                else "not all right)."
            )
        )
    if len(classes) > 1:
        other = [k for k in classes if k != main][0]
        base_finished = models["base"]["classes"][other]["profile"]["finished"]
        for name in c.rl_names:
            pr = models[name]["classes"][other]["profile"]
            L.append(
                f"- {name} on `{other}`: {pct(pr['finished'])} of samples finish within the "
                f"{c.task.budget}-token budget (base: {pct(base_finished)}); mean length "
                f"{num(pr['mean_length'], 1)} tokens."
            )
    L.append("")
    return L


def _files(c: Card) -> list[str]:
    checkpoints = "`base/`, " + ", ".join(f"`{nm}/`" for nm in c.rl_names)
    return files_section(checkpoints, "step, formats, reward")


# in the card's order
RL_SECTIONS = (_passk, _crossover, _formats, _weights, _summary, _files)
