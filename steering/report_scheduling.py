"""The scheduling study's part of the report: tables and verdicts of the hybrid runs (its
plots are drawn by :mod:`steering.report_plots`).

Every verdict is computed from confidence intervals in ``results.json``: the positive
control (the ground-truth schedule) must work before anything else is read; timing is
judged by paired differences against a schedule that fires the same labels at other
moments; "does the router know when?" by its AUROC against the ground truth.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .report_format import pct
from .report_plots import plot_recovery, plot_temperature


def _ci(ci) -> str:
    if not ci or ci[0] is None or ci[0] != ci[0]:
        return ""
    return f" [{pct(ci[0])}, {pct(ci[1])}]"


def _num(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}"


def _auc(q: dict | None) -> str:
    if not q or q.get("auroc") is None:
        return "–"
    ci = q.get("auroc_ci")
    return f"{q['auroc']:.2f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")


def _pr(q: dict | None) -> str:
    if not q:
        return "–"
    p, r = q.get("precision"), q.get("recall")
    return f"{'–' if p is None else f'{p:.2f}'} / {'–' if r is None else f'{r:.2f}'}"


def _setting(r: dict) -> str:
    emit = f"emit {r['emit']}" if r.get("emit") else "base writes"
    return f"{emit}, {'exclusive' if r.get('exclusive') else 'non-exclusive'}"


def _rec(r: dict | None) -> str:
    if r is None:
        return "not run"
    if r.get("recovery") is None:
        return f"not measurable ({r.get('refused', 'no gap')})"
    return f"{pct(r['recovery'])}{_ci(r['recovery_ci'])}"


# -- tables ------------------------------------------------------------------------------------


def runs_table(hy: dict) -> list[str]:
    """One row per hybrid run: recovery, tokens touched, and router quality per label."""
    quality_labels = sorted(  # labels with positives and negatives somewhere
        {
            k
            for r in hy["runs"]
            for k, q in (r.get("quality") or {}).items()
            if q.get("auroc") is not None
        }
    )
    head = "| run | setting | pass@1 | gap recovered | tokens | hit rate |"
    sep = "|---|---|---|---|---|---|"
    for lab in quality_labels:
        head += f" {lab}: precision / recall | {lab}: AUROC |"
        sep += "---|---|"
    rows = [head, sep]
    for r in hy["runs"]:
        hit = "–" if r.get("hit_rate") is None else f"{r['hit_rate']:.2f}"
        row = (
            f"| {r['name']} | {_setting(r)} | {pct(r['acc'])} | {_rec(r)} | "
            f"{pct(r['steered_fraction'])} | {hit} |"
        )
        for lab in quality_labels:
            q = (r.get("quality") or {}).get(lab)
            row += f" {_pr(q)} | {_auc(q)} |"
        rows.append(row)
    return rows


def temperature_table(tp: dict) -> list[str]:
    rows = ["| T | base pass@1 | RL pass@1 | RL − base [CI] | hybrids (pass@1; recovered) |"]
    rows.append("|---|---|---|---|---|")
    for g in tp["grid"]:
        hyb = "; ".join(f"{h['name']} {pct(h['acc'])}; {_rec(h)}" for h in g["hybrids"])
        t = "greedy" if g["temperature"] == 0 else f"{g['temperature']:g}"
        rows.append(
            f"| {t} | {pct(g['base'])} | {pct(g['rl'])} | {pct(g['gap'])}"
            f"{_ci(g['gap_ci'])} | {hyb} |"
        )
    return rows


# -- verdicts ----------------------------------------------------------------------------------


KNOWS_WHEN = 0.7  # AUROC CI lower bound from which a router is said to know when


def auroc_word(lo: float, hi: float) -> str:
    """The verdict on a router-quality AUROC, from its CI."""
    if lo >= KNOWS_WHEN:
        return "knows when"
    if lo > 0.5:
        return f"above chance, weakly (CI below {KNOWS_WHEN})"
    if hi < 0.5:
        return "anti-correlated"
    return "no better than chance"


def _by_name(hy: dict) -> dict[str, dict]:
    return {r["name"]: r for r in hy["runs"]}


def _diff(hy: dict, a: str, b: str) -> dict | None:
    return next((d for d in hy.get("comparisons", []) if d["a"] == a and d["b"] == b), None)


def scheduling_verdicts(res: dict) -> list[str]:
    hy = res.get("hybrid")
    if not hy or not hy.get("runs"):
        return []
    out = []
    runs = _by_name(hy)
    excl = "exclusive" if hy["exclusive"] else "non-exclusive"
    where = (
        f"{hy['n_problems']} test problems ({', '.join(hy['classes'])}), n = {hy['n']}, base "
        f"{pct(hy['acc_base'])} vs RL {pct(hy['acc_rl'])}; verdicts use the {excl} runs"
    )
    out.append(f"**The scheduling study** ({where}).")
    mode = "handoff" if any(r["mode"] == "handoff" for r in hy["runs"]) else "steer"
    gt = runs.get(f"ground_truth/{mode}")
    control_ok = None
    if gt is None:
        out.append(
            "**Positive control**: not run"
            + (" — the task has no ground-truth schedule" if not hy.get("has_schedule") else "")
            + ": a low recovery below cannot be told apart from an instrument that cannot see "
            "scheduling."
        )
    elif gt.get("recovery") is None:
        out.append(f"**Positive control** (ground truth, {mode}): {_rec(gt)}.")
    else:
        lo, hi = gt["recovery_ci"]
        control_ok = lo >= 0.5
        word = (
            "works — the hybrid can see scheduling here"
            if control_ok
            else "fails (CI below 50%): this set-up cannot show what scheduling recovers; "
            "the other verdicts are inconclusive"
        )
        out.append(
            f"**Positive control** (ground-truth schedule, {mode}, {_setting(gt)}): recovers "
            f"{_rec(gt)} of the RL gain at {pct(gt['steered_fraction'])} of tokens — {word}."
        )
        other = next((r for n, r in runs.items() if n.startswith(f"ground_truth/{mode} (")), None)
        d_ex = _diff(hy, gt["name"], other["name"]) if other is not None else None
        if other is not None and d_ex is not None:
            lo, hi = d_ex["ci"]
            if lo > 0 and gt["exclusive"]:
                word = "the base's own unscheduled strategy starts dilute a schedule"
            elif lo > 0 or hi < 0:
                word = "the setting changes what the schedule recovers"
            else:
                word = "no clear difference"
            out.append(
                f"With the other setting ({_setting(other)}) the ground truth recovers "
                f"{_rec(other)}; difference {pct(d_ex['difference'])}{_ci(d_ex['ci'])} — {word}."
            )
    fd = runs.get(f"first_decision/{mode}")
    if (
        fd is not None
        and gt is not None
        and fd.get("recovery") is not None
        and gt.get("recovery_ci")
    ):
        below = fd["recovery_ci"][1] < gt["recovery_ci"][0]
        out.append(
            f"**Negative control** (the RL model's first decision only): {_rec(fd)} — "
            + (
                "clearly below the ground truth."
                if below
                else "not clearly below the ground truth."
            )
        )
    d = _diff(hy, f"ground_truth/{mode}", f"every_boundary/{mode}")
    eb = runs.get(f"every_boundary/{mode}")
    if d is not None and eb is not None:
        lo, hi = d["ci"]
        if lo > 0:
            word = "timing matters: the ground-truth moments beat firing at every boundary"
        elif hi < 0:
            word = "firing at every boundary beats the ground-truth moments"
        else:
            word = "timing does not matter here: firing at every boundary recovers as much"
        out.append(
            f"**Does timing matter?** every-boundary schedule {_rec(eb)} at "
            f"{pct(eb['steered_fraction'])} of tokens; ground truth minus every-boundary "
            f"{pct(d['difference'])}{_ci(d['ci'])} — {word}."
        )
    for r in hy["runs"]:
        if r["router"] not in ("rl", "probe", "base_probe") or r.get("control"):
            continue
        who = {
            "rl": "the RL model",
            "probe": "a probe on the base trained on the RL model's decisions",
            "base_probe": "a probe on the base trained on the ground truth (no RL model)",
        }[r["router"]]
        parts = [f"recovers {_rec(r)} at {pct(r['steered_fraction'])} of tokens ({_setting(r)})"]
        timing = next(
            (c for c in hy["runs"] if c["name"] == f"{r['name']} control: random_timing"), None
        )
        dt = _diff(hy, r["name"], f"{r['name']} control: random_timing")
        if timing is not None and dt is not None:
            lo, hi = dt["ci"]
            word = (
                "beats random timing"
                if lo > 0
                else (
                    "is worse than random timing" if hi < 0 else "is no better than random timing"
                )
            )
            parts.append(
                f"the same labels at the same rate at random eligible moments recover "
                f"{_rec(timing)}; difference {pct(dt['difference'])}{_ci(dt['ci'])}: it {word}"
            )
        knows = []
        for lab, q in (r.get("quality") or {}).items():
            if q.get("auroc") is None or not q.get("auroc_ci"):
                continue
            w = auroc_word(*q["auroc_ci"])
            knows.append(f"{lab} AUROC {_auc(q)} ({w})")
        if knows:
            parts.append("against the ground truth on its own generations: " + ", ".join(knows))
        if control_ok is False:
            parts.append("inconclusive while the positive control fails")
        out.append(f"**Scheduling by {who}** ({r['name']}): " + "; ".join(parts) + ".")
    steer = [r for r in hy["runs"] if r["mode"] == "steer" and not r.get("control")]
    if steer:
        out.append(
            "**Steering with the base's own vectors** (does the base begin the strategy when "
            "its vector is added at the scheduled moment?): "
            + "; ".join(
                f"{r['name']} hit rate {_num(r.get('hit_rate'))}, recovers {_rec(r)}" for r in steer
            )
            + "."
        )
    ctl = [r for r in hy["runs"] if r.get("control") and r.get("control") != "random_timing"]
    if ctl:
        out.append("Other controls: " + "; ".join(f"{r['name']} {_rec(r)}" for r in ctl) + ".")
    for name, note in (hy.get("notes") or {}).items():
        out.append(f"The {name} router was not run: {note}.")
    return out


def _chosen(tp: dict) -> str:
    on = tp.get("best_chosen_on")
    return f" (chosen on {on['problems']} {on['split']} problems)" if on else ""


def temperature_verdicts(res: dict) -> list[str]:
    tp = res.get("temperature")
    if not tp:
        return []
    grid = {g["temperature"]: g for g in tp["grid"]}
    best, study = grid[tp["best_temperature"]], grid[tp["study_temperature"]]
    t_best = "greedy" if best["temperature"] == 0 else f"T = {best['temperature']:g}"
    out = [
        "**The gap depends on temperature**: "
        + "; ".join(
            f"{'greedy' if t == 0 else f'T = {t:g}'}: RL − base {pct(g['gap'])}{_ci(g['gap_ci'])}"
            for t, g in grid.items()
        )
        + "."
    ]
    alone = tp["temperature_alone"]
    if alone.get("value") is not None:
        lo, hi = best["gap_ci"]
        remain = (
            "no RL gain remains there (the gap's CI includes 0 or lies below it)"
            if lo <= 0
            else f"a gap of {pct(best['gap'])}{_ci(best['gap_ci'])} remains for scheduling"
        )
        out.append(
            f"**Sharpening or scheduling?** The base's best temperature{_chosen(tp)} is "
            f"{t_best} (pass@1 {pct(best['base'])} on the test problems). Lowering the "
            f"base's temperature alone recovers "
            f"{pct(alone['value'])}{_ci(alone['ci'])} of the T = {study['temperature']:g} "
            f"gain; at {t_best} {remain}."
        )
    else:
        out.append(f"Temperature alone: not measurable ({alone.get('refused')}).")
    return out


def scheduling_section(res: dict) -> list[str]:
    """Markdown lines of the scheduling study (tables), for report.md."""
    lines: list[str] = []
    hy = res.get("hybrid")
    if hy and hy.get("runs"):
        lines += [
            "## Scheduling study",
            "",
            "Recovered gap = (hybrid − base) / (RL − base) on the same problems, 95% paired "
            "bootstrap CI over problems. Precision / recall / AUROC: the router's firings "
            "against the ground-truth schedule at every position where the label could begin, "
            "on the hybrid's own generations (AUROC CI over generations).",
            "",
            *runs_table(hy),
            "",
            "Token by token, who wrote what and where each router fired: "
            "[tokens.html](tokens.html) (a self-contained page).",
            "",
        ]
    tp = res.get("temperature")
    if tp:
        lines += ["## Temperature", "", *temperature_table(tp), ""]
    return lines


def write_token_view(res: dict, out: Path) -> Path | None:
    """``tokens.html``: a few generations of every router and reference schedule (no
    controls), each token coloured by who wrote it, the fired label above it."""
    from .tokenview import TokenView, write_html

    hy = res.get("hybrid") or {}
    views = [
        TokenView(
            tokens=[tuple(t) for t in v["tokens"]],
            prompt=v["prompt"],
            correct=v["correct"],
            title=r["name"],
            meta={"setting": _setting(r), "recovered": _rec(r)},
        )
        for r in hy.get("runs", [])
        if not r.get("control")
        for v in r.get("token_view", [])
    ]
    if not views:
        return None
    return write_html(
        views, out / "tokens.html", title=f"{res['config']['experiment']['name']}: hybrid runs"
    )


def write_plots(res: dict, out: Path) -> list[tuple[str, str]]:
    plots = []
    if res.get("hybrid", {}).get("runs"):
        plot_recovery(res, out / "recovery.png")
        plots.append(("gap recovered by each schedule, with controls", "recovery.png"))
    if res.get("temperature", {}).get("grid"):
        plot_temperature(res, out / "temperature.png")
        plots.append(("pass@1 of base, RL and hybrids against temperature", "temperature.png"))
    return plots


def attach_comparisons(res: dict) -> None:
    """Add the paired timing comparisons to ``res["hybrid"]`` (computed, not cached)."""
    from .scheduling.stages import timing_comparisons

    hy = res.get("hybrid")
    if hy and hy.get("runs") and "acc_base_per_problem" in hy:
        cfg: dict[str, Any] = res.get("config", {}).get("hybrid", {})
        hy["comparisons"] = timing_comparisons(
            hy,
            int(cfg.get("n_boot", 1000)),
            int(res.get("config", {}).get("experiment", {}).get("seed", 0)),
        )
