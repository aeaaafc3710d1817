"""Write an experiment's ``results.json``, ``report.md`` and PNG plots.

The verdicts and tables are here, the scheduling study's in :mod:`steering.report_scheduling`,
the plots in :mod:`steering.report_plots` (their ``plot_*`` names importable from here too).

Every sentence of the report is derived from a number in ``results.json``; verdicts say
"not supported" or "not observed" when the numbers do not carry a claim.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from probes.store import atomic_write_bytes

from .report_format import pct
from .report_plots import (
    plot_budget,
    plot_formats,
    plot_passk,
    plot_router_trace,
    plot_sweep,
)
from .report_scheduling import (
    attach_comparisons,
    scheduling_section,
    scheduling_verdicts,
    temperature_verdicts,
    write_plots,
    write_token_view,
)


def _ci(lo: float | None, hi: float | None, as_pct: bool = True) -> str:
    if lo is None or hi is None or lo != lo:
        return ""
    return f" [{pct(lo)}, {pct(hi)}]" if as_pct else f" [{lo:.3f}, {hi:.3f}]"


def _jsonable(o: Any):
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items() if not str(k).startswith("_")}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    return o


# -- markdown ------------------------------------------------------------------------------


def _verdicts(res: dict) -> list[str]:
    out = []
    pk = res.get("passk")
    if pk:
        a = pk["per_class"]["all"]
        ks = pk["ks"]  # validated: sorted, starting at k = 1
        b1, r1 = a["base"]["mean"][0], a["rl"]["mean"][0]
        bl, rl = a["base"]["mean"][-1], a["rl"]["mean"][-1]
        d0_lo, d0_hi = a["crossover"]["diff_low"][0], a["crossover"]["diff_high"][0]
        better = d0_hi < 0
        out.append(
            f"**RL finds answers more often at k=1**: {'supported' if better else 'not supported'} "
            f"— pass@1 base {pct(b1)} vs RL {pct(r1)} (base − RL CI {_ci(d0_lo, d0_hi)})."
        )
        parts, any_sig = [], False
        for c, d in pk["per_class"].items():
            x = d["crossover"]
            sig = [k for k, lo in zip(ks, x["diff_low"]) if lo > 0]
            any_sig = any_sig or bool(sig)
            if x["k_star"]:
                parts.append(
                    f"{c}: mean base pass@k ≥ RL first at k*={x['k_star']} (bootstrap CI "
                    f"{x['ci']}); base significantly above RL "
                    + (f"from k={sig[0]}" if sig else "at no k")
                    + f" (up to k={ks[-1]})"
                )
            else:
                parts.append(
                    f"{c}: no crossover up to k={ks[-1]} "
                    f"(pass@{ks[-1]} base {pct(d['base']['mean'][-1])}, RL {pct(d['rl']['mean'][-1])})"
                )
        word = "supported" if any_sig else "not supported"
        out.append(f"**Base beats RL at large k**: {word} — " + "; ".join(parts) + ".")
        cov = a["coverage"]
        out.append(
            f"**Coverage split** (solved in {pk['n']} samples): both {cov['both']['count']}, "
            f"base only {cov['base_only']['count']}, RL only {cov['rl_only']['count']}, "
            f"neither {cov['neither']['count']} (pass@{ks[-1]} base {pct(bl)}, RL {pct(rl)})."
        )
    sw = res.get("sweep")
    if sw:
        best, trivial = [], False
        for lab, site in sw["best_site"].items():
            row = next(r for r in sw["rows"] if r["label"] == lab and r["site"] == site)
            ok = row["auroc_low"] > max(row["shuffled_high"], row["random_dir_high"])
            trivial = trivial or row["random_dir_high"] > 0.9
            best.append(
                f"{lab} at {site}: AUROC {row['auroc']:.3f}"
                f"{_ci(row['auroc_low'], row['auroc_high'], False)} vs shuffled labels "
                f"{row['shuffled']:.3f}, random directions {row['random_dir']:.3f} (up to "
                f"{row['random_dir_high']:.3f}) — {'decodable' if ok else 'not separable from the baselines'}"
            )
        note = (
            " Random directions already separate some labels from the rest (upper CI > 0.9): "
            "those positions differ on the surface (e.g. which token comes next), so high "
            "AUROC there shows the label is readable, not that a strategy is represented."
            if trivial
            else ""
        )
        out.append(
            "**Strategies are linearly readable in the base model**: "
            + "; ".join(best)
            + "."
            + note
        )
    out += scheduling_verdicts(res)
    out += temperature_verdicts(res)
    df = res.get("diff")
    if df:
        s = df["sparsity"]
        txt = ", ".join(
            f"{dt}: {pct(v['updated_share'])} of parameters updated" for dt, v in s.items()
        )
        ov = df.get("overlap")
        if ov:
            o = ov[0]
            txt += (
                f"; overlap of updated entries across two RL seeds {pct(o['overlap_1'])} "
                f"(chance {pct(o['chance_1'])})"
            )
        first = next(iter(s.values()))["updated_share"]
        word = (
            "supported"
            if first <= 0.5
            else "not supported: most parameters moved (small models trained with Adam at "
            "RL learning rates update almost every entry; the published 4-31% is for "
            "billion-parameter models in bf16)"
        )
        out.append(f"**RL updates a sparse subnetwork** (tol {df['tol']}): {txt} — {word}.")
    fm = res.get("formats")
    if fm and fm.get("logs"):
        parts = []
        for lg in fm["logs"]:
            cs = lg["collapse_step"]
            last = dict(zip(lg["labels"], lg["shares"][-1]))
            dom = max(last, key=last.get)
            parts.append(
                f"{Path(lg['log']).stem}: "
                + (
                    f"collapsed onto {dom} ({pct(last[dom])}) by step {cs}"
                    if cs is not None
                    else f"no single format above 90% (largest {dom} {pct(last[dom])})"
                )
            )
        out.append("**RL collapses formats**: " + "; ".join(parts) + ".")
    return out


def summary_table(res: dict) -> str:
    """The headline table (also printed by the CLI): pass@k per class, then the scheduling
    study's reference schedules and routers (handoff, the verdict's setting)."""
    rows = ["| measure | base | RL | gap recovered (tokens touched) |", "|---|---|---|---|"]
    pk = res.get("passk")
    if pk:
        for c, d in pk["per_class"].items():
            rows.append(
                f"| pass@1 ({c}) | {pct(d['base']['mean'][0])} | {pct(d['rl']['mean'][0])} | |"
            )
            rows.append(
                f"| pass@{pk['ks'][-1]} ({c}) | {pct(d['base']['mean'][-1])} | "
                f"{pct(d['rl']['mean'][-1])} | |"
            )
    hy = res.get("hybrid")
    if hy:
        for r in hy.get("runs", []):
            if r.get("control") or "(" in r["name"]:
                continue
            rec = (
                f"{pct(r['recovery'])}{_ci(*r['recovery_ci'])}"
                if r.get("recovery") is not None
                else "n/a"
            )
            rows.append(f"| hybrid {r['name']} | | | {rec} ({pct(r['steered_fraction'])}) |")
    tp = res.get("temperature")
    if tp:
        for g in tp["grid"]:
            t = "greedy" if g["temperature"] == 0 else f"T = {g['temperature']:g}"
            rows.append(
                f"| pass@1 at {t} (hybrid problems) | {pct(g['base'])} | {pct(g['rl'])} | |"
            )
    return "\n".join(rows)


def _labeller_lines(res: dict) -> list[str]:
    """Which labeller produced the strategy spans, and its measured agreement if any."""
    lab = res.get("labeller")
    if not lab:
        return []
    a = lab.get("agreement")
    if a:
        measured = (
            f"agreement with annotated traces ({lab['measured_on']}, {a['n_sentences']} "
            f"sentences): accuracy {a['accuracy']:.2f}, macro-F1 {a['macro_f1']:.2f}, "
            f"kappa {a['kappa']:.2f}; majority baseline {a['majority_accuracy']:.2f}"
        )
    else:
        measured = f"agreement not measured ({lab['measured_on']})"
    return [f"Strategy spans labelled by the **{lab['name']}** labeller; {measured}.", ""]


def _stage_times(res: dict) -> str:
    """Seconds each stage took when it was computed (cached stages: when first computed)."""
    parts = []
    for stage, v in res.items():
        if not isinstance(v, dict):
            continue
        sec = v.get("seconds", v.get("raw", {}).get("seconds") if "raw" in v else None)
        if isinstance(sec, (int, float)):
            parts.append(f"{stage} {sec:.0f} s")
    return "stages: " + ", ".join(parts) if parts else "no stage times"


def _write_claim_report(out: Path, res: dict) -> None:
    from rlvr.organism.claims import plot_claim, render_claim

    plots = plot_claim(res["claim"], out)
    res["plots"] = [p for _, p in plots]
    atomic_write_bytes(out / "results.json", json.dumps(_jsonable(res), indent=1).encode())
    cfg = res["config"]
    lines = [
        f"# {cfg['experiment']['name']}: an RL claim on the organism",
        "",
        f"Claims folder `{cfg['claim']['folder']}`; every number below is in `results.json`.",
        "",
        *render_claim(res["claim"]),
        "## Figures",
        "",
        *[f"![{cap}]({p})\n" for cap, p in plots],
        f"_Run time {res.get('seconds', 0)} s ({_stage_times(res)}); versions: "
        + ", ".join(f"{k} {v}" for k, v in res.get("versions", {}).items())
        + "._",
        "",
    ]
    atomic_write_bytes(out / "report.md", "\n".join(lines).encode())


def write_report(out: Path, res: dict, sweep_result=None) -> None:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if "claim" in res:
        return _write_claim_report(out, res)
    plots = []
    if "passk" in res:
        plot_passk(res, out / "passk.png")
        plots.append(("pass@k, base vs RL", "passk.png"))
    if sweep_result is not None:
        plot_sweep(sweep_result, out / "sweep.png")
    if res.get("sweep") and (out / "sweep.png").exists():
        plots.append(("probe AUROC by layer, with baselines", "sweep.png"))
    attach_comparisons(res)
    plots += write_plots(res, out)
    write_token_view(res, out)
    if res.get("hybrid", {}).get("examples"):
        plot_router_trace(res, out / "router.png")
        plots.append(("where the router fired", "router.png"))
    if res.get("budget", {}).get("points"):
        plot_budget(res, out / "budget.png")
        plots.append(("recovery against the share of tokens touched", "budget.png"))
    if res.get("formats", {}).get("logs"):
        plot_formats(res, out / "formats.png")
        plots.append(("format shares over RL steps", "formats.png"))
    res["plots"] = [p for _, p in plots]
    atomic_write_bytes(out / "results.json", json.dumps(_jsonable(res), indent=1).encode())
    cfg = res["config"]

    def rel(p: str) -> str:
        try:
            return str(Path(p).resolve().relative_to(Path.cwd().resolve()))
        except ValueError:
            return p

    lines = [
        f"# {cfg['experiment']['name']}: what did RL add?",
        "",
        "The question: does RL post-training teach the model *how* to solve problems, or "
        "*when* to use strategies the base model already runs? This report compares the base "
        f"model (`{rel(cfg['models']['base'])}`) with its RL version (`{rel(cfg['models']['rl'])}`) on "
        f"the `{cfg['task']['kind']}` task. Every number below is in `results.json` with its "
        "n and confidence interval (95% bootstrap over problems).",
        "",
        "## Summary",
        "",
        summary_table(res),
        "",
        *_labeller_lines(res),
        "## Verdicts",
        "",
        *[f"- {v}" for v in _verdicts(res)],
        "",
        *scheduling_section(res),
        "## Figures",
        "",
        *[f"![{cap}]({p})\n" for cap, p in plots],
        f"_Run time {res.get('seconds', 0)} s ({_stage_times(res)}); versions: "
        + ", ".join(f"{k} {v}" for k, v in res.get("versions", {}).items())
        + "._",
        "",
    ]
    atomic_write_bytes(out / "report.md", "\n".join(lines).encode())
