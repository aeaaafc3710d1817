"""A claim measurement as Markdown and PNG figures (every sentence from a number).

:func:`render_claim` gives the report's lines; :func:`plot_claim` writes its figures and
returns ``(caption, file name)`` pairs. Both take :func:`measure_claim`'s dict.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["plot_claim", "render_claim"]

TITLES = {
    "one_example": "One training example suffices (Wang et al., arXiv 2504.20571)",
    "spurious": "Spurious rewards improve the model (Shao et al., arXiv 2506.10947)",
    "over_hard": "Over-hard problems teach shortcuts (arXiv 2605.28388)",
    "distillation": "Distillation expands the boundary; RL does not (Yue et al., arXiv 2504.13837)",
    "sparsity": "RL updates are sparse, SFT's dense (Mukherjee et al., arXiv 2505.11711)",
}


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _ci(d: dict[str, Any], i: int | None = None, signed: bool = True) -> str:
    m, lo, hi = (
        (d["mean"], d["low"], d["high"]) if i is None else (d["mean"][i], d["low"][i], d["high"][i])
    )
    f = (lambda x: f"{100 * x:+.1f}") if signed else (lambda x: f"{100 * x:.1f}")
    return f"{f(m)} [{f(lo)}, {f(hi)}] pts" if signed else f"{f(m)}% [{f(lo)}, {f(hi)}]"


def _model_table(models: dict[str, Any], ks: list[int]) -> list[str]:
    head = "| model | " + " | ".join(f"pass@{k}" for k in ks) + " | formats | shortcuts |"
    lines = [head, "|" + "---|" * (len(ks) + 3)]
    for name, m in models.items():
        cells = [_ci(m["passk"], i, signed=False) for i in range(len(ks))]
        fm = ", ".join(f"{k} {_pct(v)}" for k, v in m["formats"].items() if v >= 0.005)
        sc = _pct(m["shortcuts"]["any"]["mean"])
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {fm} | {sc} |")
    return lines


def render_claim(res: dict[str, Any]) -> list[str]:
    """The claim's section of the report: title, verdict, tables, what the verdict rests on."""
    claim = res["claim"]
    s = res["settings"]
    ks = list(s["ks"])
    over = "parameter tensors" if claim == "sparsity" else "problems"
    sampled = (
        ""
        if claim == "sparsity"
        else f" {s['n']} samples per problem on held-out main-class test problems."
    )
    out = [
        f"## {TITLES[claim]}",
        "",
        f"**Verdict: {res['verdict']}.**",
        "",
        f"Rule: an effect counts when its 95% CI (paired bootstrap over {over}, "
        f"{s['n_boot']} resamples) lies above 0 and reaches min_effect = {s['min_effect']}; "
        f"it is absent when the whole CI lies below min_effect.{sampled}",
        "",
    ]
    out += globals()[f"_render_{claim}"](res, ks)
    return out


def _render_one_example(res: dict[str, Any], ks: list[int]) -> list[str]:
    c, ex = res["comparisons"], res["example"] or {}
    p = ex.get("problem", {})
    return [
        f"The one example: `{p.get('start')}{p.get('hops', 0):02d}:` ({ex.get('rule')}; its base "
        f"pass@1 {ex.get('base_pass1', float('nan')):.2f}), repeated to fill every GRPO batch. "
        "Full-data RL is the organism's own RL (same steps, seeds and settings).",
        "",
        f"- one example − base, pass@1: {_ci(c['one_minus_base'])} (lift: {res['effects']['lift']})",
        f"- full data − base, pass@1: {_ci(c['full_minus_base'])}",
        f"- one example − full data, pass@1: {_ci(c['one_minus_full'])} (within "
        f"{res['settings']['margin']:.2f}: {res['effects']['close_to_full']})",
        "",
        *_model_table(res["models"], ks),
        "",
    ]


def _render_spurious(res: dict[str, Any], ks: list[int]) -> list[str]:
    lines = [
        "Every run: GRPO from the organism's base, 400 updates in 100 generation batches "
        "(four updates each, so the clipped ratio acts), seed 0. The true reward is the "
        f"positive control (it {'gains' if res['control_ok'] else 'does NOT gain: the set-up cannot see an effect'}).",
        "",
        "| reward | clipping | pass@1 − base | effect | verdict |",
        "|---|---|---|---|---|",
    ]
    for r in res["rewards"].values():
        lines.append(
            f"| {r['reward']} | {'yes' if r['clip'] else 'no'} | {_ci(r['gain'])} | "
            f"{r['effect']} | {r['verdict'] if r['reward'] != 'verify' else 'control'} |"
        )
    clip = res["clipping"]
    lines += ["", f"**Clipping as the cause: {clip['verdict']}** ({clip.get('why')})."]
    if "difference" in clip:
        lines[-1] += f" Random reward with clipping − without: {_ci(clip['difference'])}."
    lines += ["", *_model_table(res["models"], ks), ""]
    return lines


def _render_over_hard(res: dict[str, Any], ks: list[int]) -> list[str]:
    c, sel = res["comparisons"], res["selection"] or {}
    lines = [
        f"Training problems: {sel.get('kept')} of a pool of {sel.get('pool')} ({sel.get('rule')}); "
        f"the pool's base pass@1 was {sel.get('pool_pass1', 0):.4f} and the base solved "
        f"{sel.get('pool_solved_any')} of its problems at least once. GRPO on them only, "
        "then measured on the main class.",
        "",
        f"- base − over-hard RL, main pass@1: {_ci(c['base_minus_over_hard'])} "
        f"(fall: {res['effects']['pass1_drop']})",
        f"- normal RL − over-hard RL, main pass@1: {_ci(c['normal_minus_over_hard'])}",
        f"- shortcut share, over-hard RL − base: {_ci(c['shortcuts_over_hard_minus_base'])} "
        f"(more shortcuts: {res['effects']['more_shortcuts']})",
        f"- verified reward during training, first / last generation batch: "
        f"{res['trajectory']['verified'][0]:.3f} / {res['trajectory']['verified'][-1]:.3f}",
        "",
        *_model_table(res["models"], ks),
        "",
        "Shortcut kinds (share of samples): "
        + "; ".join(
            f"{name}: "
            + ", ".join(
                f"{k} {_pct(m['shortcuts'][k]['mean'])}"
                for k in ("no_steps", "skipped_hops", "repeated")
            )
            for name, m in res["models"].items()
        ),
        "",
    ]
    for name, m in res["models"].items():
        for kind, texts in m.get("examples", {}).items():
            lines.append(f"- {name}, {kind}: " + ", ".join(f"`{t}`" for t in texts))
    lines.append("")
    return lines


def _render_distillation(res: dict[str, Any], ks: list[int]) -> list[str]:
    t = res.get("teacher") or {}
    lines = [
        f"A base pretrained without the transition(s) {', '.join(res['unseen'])}; SFT on "
        f"{t.get('kept')} verified traces of the teacher `{t.get('teacher')}` on the main "
        "train problems, against GRPO from the same base on the same problems.",
        "",
    ]
    for g, r in res["groups"].items():
        lines += [f"**{g} problems** ({r['n_problems']}):", ""]
        lines += _model_table(r["models"], ks)
        lines.append("")
        for m, v in r["moved"].items():
            cov = v["coverage"]
            lines.append(
                f"- {m} − base, pass@{ks[-1]}: {_ci(v['difference'], len(ks) - 1)} "
                f"(moved: {v['effect']}); coverage both {cov['both']['count']}, base only "
                f"{cov['base_only']['count']}, new only {cov['rl_only']['count']}, neither "
                f"{cov['neither']['count']}"
            )
        lines.append("")
    return lines


def _render_sparsity(res: dict[str, Any], ks: list[int]) -> list[str]:
    o = res["organism_rl"]
    lines = [
        f"The organism's own RL (lr {o['lr']:g}, {o['steps']} steps): bf16 updated share "
        f"{_pct(o['bf16_updated'])}, fp32 {_pct(o['fp32_updated'])}, mean update rank "
        f"{o['rank_mean']:.2f} of full.",
        "",
        "| run | lr | steps | lr × steps | bf16 updated | fp32 updated | rank (mean) |",
        "|---|---|---|---|---|---|---|",
    ]
    for x in res["grid"]:
        lines.append(
            f"| {x['run']} | {x['lr']:g} | {x['steps']} | {x['lr_x_steps']:.1e} | "
            f"{_pct(x['bf16_updated'])} | {_pct(x['fp32_updated'])} | {x['rank_mean']:.2f} |"
        )
    lines += ["", "SFT − RL updated share at equal lr and steps (per-matrix paired CI):", ""]
    for c in res["comparisons"]:
        lines.append(
            f"- lr {c['lr']:g}, {c['steps']} steps, seed {c['seed']}: {_ci(c['sft_minus_rl'])} "
            f"({c['effect']})"
        )
    lines += ["", "Overlap of updated parameters across seeds (bf16) against chance:", ""]
    for row in res["overlap"]:
        last = max(row["steps"], key=int) if row["steps"] else None
        if last:
            x = row["steps"][last]
            lines.append(
                f"- {' / '.join(row['runs'])} after {last} steps: {_pct(x['overlap_1'])} "
                f"(chance {_pct(x['chance_1'])})"
            )
    lines.append("")
    return lines


def plot_claim(res: dict[str, Any], out: Path) -> list[tuple[str, str]]:
    """Write the claim's figures into ``out``; returns (caption, file name) pairs."""
    import matplotlib.pyplot as plt

    claim = res["claim"]
    plots: list[tuple[str, str]] = []
    ks = list(res["settings"]["ks"])

    def curves(models: dict[str, Any], name: str, caption: str) -> None:
        fig, ax = plt.subplots(figsize=(5, 3.4))
        for m, d in models.items():
            ax.plot(ks, d["passk"]["mean"], marker="o", label=m)
            ax.fill_between(ks, d["passk"]["low"], d["passk"]["high"], alpha=0.15)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("k")
        ax.set_ylabel("pass@k")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        plots.append((caption, name))

    def trajectories(trajs: dict[str, Any], name: str, caption: str) -> None:
        fig, ax = plt.subplots(figsize=(6, 3.4))
        for run, t in trajs.items():
            for fmt, style in (("CHECK", "-"), ("DIRECT", ":")):
                if fmt in t:
                    ax.plot(t["step"], t[fmt], style, label=f"{run} {fmt}")
        ax.set_xlabel("generation batch")
        ax.set_ylabel("format share")
        ax.legend(fontsize=6, ncol=2)
        fig.tight_layout()
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        plots.append((caption, name))

    if claim == "one_example":
        curves(res["models"], "claim_passk.png", "main-class pass@k: one example vs full data")
        trajectories(res["trajectories"], "claim_formats.png", "format shares during GRPO")
    elif claim == "spurious":
        curves(res["models"], "claim_passk.png", "main-class pass@k per reward")
        trajectories(res["trajectories"], "claim_formats.png", "format shares during GRPO")
    elif claim == "over_hard":
        curves(res["models"], "claim_passk.png", "main-class pass@k after over-hard RL")
        trajectories({"over-hard": res["trajectory"]}, "claim_formats.png", "formats during GRPO")
    elif claim == "distillation":
        for g, r in res["groups"].items():
            curves(r["models"], f"claim_passk_{g}.png", f"pass@k on {g} problems")
    elif claim == "sparsity":
        fig, ax = plt.subplots(figsize=(5.5, 3.6))
        for kind, marker in (("grpo", "o"), ("sft", "s")):
            rows = [x for x in res["grid"] if x["kind"] == kind]
            for lr in sorted({x["lr"] for x in rows}):
                pts = sorted((x["lr_x_steps"], x["bf16_updated"]) for x in rows if x["lr"] == lr)
                ax.plot(
                    *zip(*pts),
                    marker=marker,
                    ls="-" if kind == "grpo" else "--",
                    label=f"{'RL' if kind == 'grpo' else 'SFT'} lr {lr:g}",
                )
        o = res["organism_rl"]
        ax.scatter(
            [o["lr_x_steps"]], [o["bf16_updated"]], marker="*", s=80, c="k", label="organism RL"
        )
        ax.set_xscale("log")
        ax.set_xlabel("lr × steps")
        ax.set_ylabel("share of parameters updated (bf16)")
        ax.legend(fontsize=6)
        fig.tight_layout()
        fig.savefig(out / "claim_sparsity.png", dpi=110)
        plt.close(fig)
        plots.append(("updated share against lr × steps", "claim_sparsity.png"))
    return plots
