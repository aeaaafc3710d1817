"""The report's PNG plots: pass@k, the probe sweep, the budget curve, format shares, where
the router fired, and the scheduling study's recovery bars and temperature curves.

Each ``plot_*(res, path)`` reads ``results.json``'s dict and writes one PNG (nothing when
its part of the results is empty); matplotlib is imported only when a plot is drawn.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .report_format import pct

__all__ = [
    "plot_budget",
    "plot_formats",
    "plot_passk",
    "plot_recovery",
    "plot_router_trace",
    "plot_sweep",
    "plot_temperature",
]


def plot_passk(res: dict, path: Path) -> None:
    import matplotlib.pyplot as plt

    pk = res["passk"]
    classes = [c for c in pk["per_class"] if c != "all"] or ["all"]
    fig, axes = plt.subplots(1, len(classes), figsize=(4.2 * len(classes), 3.3), squeeze=False)
    ks = pk["ks"]
    for ax, c in zip(axes[0], classes):
        d = pk["per_class"][c]
        for who, color in (("base", "C0"), ("rl", "C1")):
            ax.plot(
                ks,
                d[who]["mean"],
                "-o",
                ms=3,
                color=color,
                label=who.upper() if who == "rl" else who,
            )
            ax.fill_between(ks, d[who]["low"], d[who]["high"], color=color, alpha=0.2)
        ks_star = d["crossover"]["k_star"]
        if ks_star:
            ax.axvline(ks_star, color="gray", ls="--", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("k")
        ax.set_title(f"{c} ({d['n_problems']} problems)", fontsize=9)
    axes[0][0].set_ylabel("pass@k")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_sweep(sweep_result, path: Path) -> None:
    import matplotlib.pyplot as plt

    from probes.probe import plot_sweep as _plot

    axes = np.atleast_1d(_plot(sweep_result))
    fig = axes[0].figure
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_budget(res: dict, path: Path) -> None:
    import matplotlib.pyplot as plt

    pts = res.get("budget", {}).get("points", [])
    if not pts:
        return
    fig, ax = plt.subplots(figsize=(4.6, 3.3))
    for mode, color in (("steer", "C2"), ("handoff", "C3")):
        p = sorted([x for x in pts if x["mode"] == mode], key=lambda x: x["steered_fraction"])
        if not p:
            continue
        xs = [x["steered_fraction"] for x in p]
        ax.errorbar(
            xs,
            [x["recovery"] for x in p],
            yerr=[
                [x["recovery"] - x["recovery_ci"][0] for x in p],
                [x["recovery_ci"][1] - x["recovery"] for x in p],
            ],
            fmt="-o",
            ms=3,
            color=color,
            label=mode,
            capsize=2,
        )
    ax.axhline(0, color="black", lw=0.6)
    ax.axhline(1, color="gray", lw=0.6, ls="--")
    ax.set_xlabel("share of tokens the router touches")
    ax.set_ylabel("gap recovered")
    ax.set_title("scheduling budget curve", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_formats(res: dict, path: Path) -> None:
    import matplotlib.pyplot as plt

    logs = res.get("formats", {}).get("logs", [])
    if not logs:
        return
    fig, axes = plt.subplots(1, len(logs), figsize=(4.2 * len(logs), 3.2), squeeze=False)
    for ax, lg in zip(axes[0], logs):
        shares = np.array(lg["shares"])
        ax.stackplot(lg["steps"], shares.T, labels=lg["labels"], alpha=0.85)
        ax.set_xlabel("RL step")
        ax.set_ylim(0, 1)
        ax.set_title(Path(lg["log"]).stem, fontsize=9)
    axes[0][0].set_ylabel("share of rollouts")
    axes[0][0].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_router_trace(res: dict, path: Path) -> None:
    """A token-level view: the example traces with the tokens where the router fired."""
    import matplotlib.pyplot as plt

    ex = res.get("hybrid", {}).get("examples", [])
    if not ex:
        return
    ex = ex[:6]
    width = max(len(e["prompt"]) + len(e["text"]) for e in ex)
    fig, ax = plt.subplots(figsize=(min(16, 0.16 * width + 1.5), 0.45 * len(ex) + 0.8))
    for row, e in enumerate(ex):
        text = e["prompt"] + e["text"]
        fired = {int(pos): lab for pos, lab in e["fired"]}
        for i, ch in enumerate(text):
            lab = fired.get(i - len(e["prompt"]))
            color = "black" if i < len(e["prompt"]) else "C0"
            bbox = dict(boxstyle="square,pad=0.1", fc="C3", alpha=0.35, lw=0) if lab else None
            ax.text(
                i,
                -row,
                ch,
                family="monospace",
                fontsize=8,
                color=color,
                ha="center",
                va="center",
                bbox=bbox,
            )
        ax.text(
            len(text) + 1,
            -row,
            "✓" if e.get("correct") else "✗",
            fontsize=9,
            va="center",
            color="C2" if e.get("correct") else "C3",
        )
    ax.set_xlim(-1, width + 3)
    ax.set_ylim(-len(ex) + 0.5, 0.5)
    ax.axis("off")
    ax.set_title(
        f"{res['hybrid'].get('example_run', '')}: red = the router fired at the "
        "position that chose this token",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_recovery(res: dict, path: Path) -> None:
    """Horizontal bars with CIs: reference schedules, routers and controls, tokens touched."""
    import matplotlib.pyplot as plt

    runs = [r for r in res["hybrid"]["runs"] if r.get("recovery") is not None]
    if not runs:
        return
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(runs) + 1.2))
    ys = np.arange(len(runs))[::-1]
    rec = np.array([r["recovery"] for r in runs])
    err = np.array(
        [[r["recovery"] - r["recovery_ci"][0], r["recovery_ci"][1] - r["recovery"]] for r in runs]
    ).T

    def color(r):
        if r.get("control"):
            return "0.7"
        return {"ground_truth": "C2", "every_boundary": "C8", "first_decision": "C3"}.get(
            r["router"], "C0"
        )

    ax.barh(ys, rec, xerr=err, color=[color(r) for r in runs], capsize=2, height=0.7)
    right = max(1.05, float(np.max(rec + err[1])) + 0.05)
    for y, r in zip(ys, runs):
        ax.text(
            right + 0.02,
            y,
            f"{pct(r['recovery'])} · {100 * r['steered_fraction']:.0f}% tok",
            va="center",
            fontsize=7,
        )
    ax.set_yticks(ys, [r["name"] for r in runs], fontsize=7)
    ax.axvline(0, color="black", lw=0.6)
    ax.axvline(1, color="gray", lw=0.6, ls="--")
    ax.set_xlim(min(-0.1, float(np.min(rec - err[0])) - 0.05), right + 0.45)
    ax.set_xlabel("gap recovered (95% CI)")
    ax.set_title(
        "green: ground truth · olive: every boundary · red: first decision · grey: controls",
        fontsize=8,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_temperature(res: dict, path: Path) -> None:
    import matplotlib.pyplot as plt

    tp = res["temperature"]
    grid = sorted(tp["grid"], key=lambda g: g["temperature"])
    xs = [g["temperature"] for g in grid]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(xs, [g["base"] for g in grid], "o-", label="base", color="C0")
    ax.plot(xs, [g["rl"] for g in grid], "s-", label="RL", color="C1")
    names = sorted({h["name"] for g in grid for h in g["hybrids"]})
    for i, name in enumerate(names):
        ys = [next((h["acc"] for h in g["hybrids"] if h["name"] == name), np.nan) for g in grid]
        ax.plot(xs, ys, "^--", label=f"hybrid {name}", color=f"C{i + 2}")
    ax.set_xlabel("temperature (0 = greedy)")
    ax.set_ylabel("pass@1")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=7)
    ax.set_title("pass@1 against temperature", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
