"""Render the organism card (markdown) from measured results; every number comes from
``results.json`` / ``training.json``, and every claim is worded from those numbers.

:func:`render` joins one function per section. The number formats and the tables that
both organisms' cards show (corpus formats, training runs, pass@k, formats over RL steps,
weights, files) are here too, for :mod:`.card_when` to use.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .recipe import Recipe
from .task import FORMATS

__all__ = [
    "Card",
    "at",
    "ci",
    "corpus_table",
    "files_section",
    "minutes",
    "num",
    "passk_table",
    "pct",
    "render",
    "rl_formats_table",
    "training_table",
    "weights_table",
]

# ----------------------------------------------------------------------------- numbers


def pct(x: float | None, d: int = 1) -> str:
    """A share as a percentage (``n/a`` for None)."""
    return "n/a" if x is None else f"{100 * x:.{d}f}%"


def num(x: float | None, d: int = 3) -> str:
    """A number with ``d`` decimals (``n/a`` for None)."""
    return "n/a" if x is None else f"{x:.{d}f}"


def ci(c: dict[str, Any] | None, d: int = 3) -> str:
    """``mean [low, high]`` of a dict with those keys (``n/a`` without a mean)."""
    if c is None or c.get("mean") is None:
        return "n/a"
    return f"{c['mean']:.{d}f} [{num(c.get('low'), d)}, {num(c.get('high'), d)}]"


def at(curve: dict[str, Any], k: int) -> dict[str, float]:
    """A pass@k curve's ``mean``, ``low`` and ``high`` at ``k``."""
    i = curve["ks"].index(k)
    return {"mean": curve["mean"][i], "low": curve["low"][i], "high": curve["high"][i]}


def minutes(s: float | None) -> str:
    """Seconds as ``x.y min (z s)`` (``n/a`` for None)."""
    return "n/a" if s is None else f"{s / 60:.1f} min ({s:.0f} s)"


# ----------------------------------------------------------------------------- shared tables


def corpus_table(corpus: Any, noise: tuple[str, str, str]) -> list[str]:
    """The pretraining formats (shape, share of the corpus) with each one's ``noise`` text."""
    shapes = ("`=xyz.`", "`bcd...=xyz.`", "`bc?cd...=xyz.`")
    return [
        "| format | shape | share | noise |",
        "|---|---|---|---|",
        *(
            f"| {fmt} | {shape} | {share:.2f} | {text} |"
            for fmt, shape, share, text in zip(FORMATS, shapes, corpus.mix, noise)
        ),
    ]


def training_table(rows: list[tuple[str, str, Any, float | None]]) -> list[str]:
    """One row per training stage: ``(stage, settings, steps, seconds)``."""
    return [
        "| stage | settings | steps | wall time |",
        "|---|---|---|---|",
        *(
            f"| {stage} | {settings} | {steps} | {minutes(s)} |"
            for stage, settings, steps, s in rows
        ),
    ]


def passk_table(models: dict[str, Any], names: list[str], cls: str, ks: list[int]) -> list[str]:
    """pass@k with its CI per k (rows) and model (columns) on one class."""
    return [
        "| k | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
        *(
            f"| {k} | " + " | ".join(ci(at(models[nm]["passk"][cls], k)) for nm in names) + " |"
            for k in ks
        ),
    ]


def rl_formats_table(fs: dict[str, Any]) -> list[str]:
    """One RL seed's format shares, reward, checks, step accuracy and length over steps."""
    return [
        "| step | "
        + " | ".join(FORMATS)
        + " | mean reward | checks per step | step acc | mean length |",
        "|---|" + "---|" * (len(FORMATS) + 4),
        *(
            f"| {row['step']} | "
            + " | ".join(pct(row["shares"].get(f)) for f in FORMATS)
            + f" | {num(row['reward'])} | {num(row['checks_per_step'])} | {num(row['step_acc'])} | "
            f"{num(row['mean_length'], 1)} |"
            for row in fs["table"]
        ),
    ]


def weights_table(w: dict[str, Any], rl_names: list[str], *, sparsity: bool) -> list[str]:
    """Updated share (bf16, fp32) and mean relative rank of each seed's weight update;
    ``sparsity`` adds the sparsity beside each share."""
    fp32 = "updated share, fp32 (any change)" if sparsity else "updated share, fp32"
    out = [
        f"| RL seed | updated share, bf16 (abs diff > 1e-5) | {fp32} | mean rank(dW)/min(m, n) |",
        "|---|---|---|---|",
    ]
    for name in rl_names:
        sp = w["sparsity"][name]
        bf16, fp = pct(sp["bf16"]["updated_share"]), pct(sp["fp32"]["updated_share"])
        if sparsity:
            bf16 += f" (sparsity {pct(sp['bf16']['sparsity'])})"
            fp += f" (sparsity {pct(sp['fp32']['sparsity'])})"
        out.append(f"| {name} | {bf16} | {fp} | {num(w['rank'][name]['mean'])} |")
    return out


def files_section(checkpoints: str, log_fields: str, results_note: str = "") -> list[str]:
    """The card's last section: what each file of the organism folder holds."""
    return [
        "## Files",
        "",
        f"- {checkpoints}: safetensors + config + character tokenizer (load with "
        "`transformers.AutoModelForCausalLM` / `AutoTokenizer`, or `probes.handles.wrap(path)`).",
        "- `splits/{train,dev,test}.jsonl`: problems (`start`, `hops`, `cls`).",
        f"- `logs/rl-seed*.jsonl`: per RL step, `{{{log_fields}, ...}}`.",
        "- `recipe.toml`: every seed and setting; `training.json`: times, steps, the gate; "
        f"`results.json`: every number in this card{results_note}.",
        "",
    ]


# ----------------------------------------------------------------------------- the card


@dataclass(frozen=True)
class Card:
    """What every section reads: the recipe, ``training.json`` and ``results.json``."""

    recipe: Recipe
    training: dict[str, Any]
    results: dict[str, Any]

    @property
    def task(self) -> Any:
        return self.recipe.task

    @property
    def corpus(self) -> Any:
        return self.recipe.pretrain.corpus

    @property
    def settings(self) -> dict[str, Any]:
        return self.results["settings"]

    @property
    def models(self) -> dict[str, Any]:
        return self.results["models"]

    @property
    def names(self) -> list[str]:
        """The base, then the RL seeds."""
        return list(self.models)

    @property
    def rl_names(self) -> list[str]:
        return self.names[1:]

    @property
    def classes(self) -> list[str]:
        return list(self.settings["classes"])

    @property
    def main(self) -> str:
        return "main" if "main" in self.classes else self.classes[0]

    @property
    def ks(self) -> list[int]:
        return self.settings["ks"]

    @property
    def corpus_hops(self) -> str:
        return f"{self.corpus.hops[0]}-{self.corpus.hops[1]}"

    def join(self, sections: Sequence[Callable[[Card], list[str]]]) -> str:
        """The markdown of the sections' lines, in order."""
        return "\n".join(line for section in sections for line in section(self))


def render(recipe: Recipe, training: dict[str, Any], results: dict[str, Any]) -> str:
    return Card(recipe, training, results).join(
        (
            _intro,
            _task,
            _training,
            _competence,
            _passk,
            _crossover,
            _formats,
            _weights,
            _summary,
            _files,
        )
    )


def _intro(c: Card) -> list[str]:
    return [
        "# The model organism: a tiny base/RL pair on a verifiable permutation-chain task",
        "",
        "A base model pretrained from scratch on a mixture of solution formats, and the same "
        "model after RL with verifiable rewards (GRPO), two RL seeds. Everything below was "
        "measured by `rlvr.organism.evaluate` on the files in this folder; the card is "
        "rendered from `results.json` by `rlvr.organism.write_card`.",
        "",
    ]


def _task(c: Card) -> list[str]:
    task, corpus, recipe = c.task, c.corpus, c.recipe
    cls_txt = ", ".join(f"`{k}` = hops {lo}-{hi}" for k, (lo, hi) in c.settings["classes"].items())
    sizes = "; ".join(
        f"{k}: " + ", ".join(f"{s} {v}" for s, v in recipe.split_sizes[k].items())
        for k in sorted(recipe.split_sizes)
    )
    noise = (
        f"right with p {corpus.direct_right} (else three random states): a guess",
        f"each written state wrong with p {corpus.corrupt}; the chain continues from what was "
        "written",
        f"like STEP; after a step, with p {corpus.check_p}, `?v` with `v = f(state before the "
        "step)`, always right; the chain continues from `v` (a check repairs a wrong step)",
    )
    return [
        "## The task",
        "",
        f"- {task.n_states} states (single characters `a`-`z`, `A`-`Z`), one secret permutation "
        f"`f` drawn from seed {task.seed} as a single {task.n_states}-cycle (a chain never "
        "revisits a state, so a miscounted chain is never right by accident).",
        "- Prompt `{s0}{k:02d}:` (start state, hop count). Answer: the last three states "
        f"`s_(k-2) s_(k-1) s_k` of the true chain ({task.n_states}^3 = {task.n_states**3:,} "
        "possible answers).",
        f"- Reward 1 when the completion is `<body>=xyz.` with the right `xyz` and the `.` "
        f"within the completion budget of **{task.budget} tokens** (one token per character); "
        "the same budget bounds RL rollouts and evaluation samples.",
        f"- Classes: {cls_txt}. RL trains on `main` only. In `long`, a trace that checks after "
        f"every step (3k + 5 tokens) overflows the budget while a STEP trace (k + 5) fits; "
        f"every long hop count lies inside the pretraining range {c.corpus_hops}.",
        f"- Splits (`splits/*.jsonl`, disjoint (start, hops) pairs, seed {recipe.split_seed}; "
        f"-1 = the rest): {sizes}.",
        "",
        "Pretraining corpus formats, chosen per trace at random (never at the right times):",
        "",
        *corpus_table(corpus, noise),
        "",
        "Labelled segments for probes and routers (`PermutationChain.spans` / `segment_start`): "
        "`step` (one written state), `stepwise` (the first written state: the decision to work "
        "step by step, counterpart of `direct`), `check` (`?v`), `answer` (`=xyz` after a body), "
        "`direct` (`=xyz` as the whole completion). The format decision is sampled at the first "
        "completion token from a distribution the prompt alone fixes, so no vector read at the "
        "prompt's last position separates `stepwise` from `direct`: acting on that decision "
        "takes a handoff (or re-rank), not a base-model vector.",
        "",
    ]


def _training(c: Card) -> list[str]:
    task, training = c.task, c.training
    pre = training.get("pretrain", {})
    m, p, r = c.recipe.model, c.recipe.pretrain, c.recipe.rl
    rows: list[tuple[str, str, Any, float | None]] = [
        (
            "pretraining (from scratch)",
            f"HF `LlamaForCausalLM`, {m.n_layers} layers, d_model {m.d_model}, {m.n_heads} "
            f"heads, d_ff {m.d_ff}, tied embeddings, {pre.get('n_params', 0):,} parameters; "
            f"AdamW lr {p.lr} (warm-up {p.warmup}, cosine to {p.final_lr_ratio}x), batch "
            f"{p.batch_size} fresh corpus traces, seed {p.seed}",
            pre.get("steps", p.steps),
            pre.get("seconds"),
        )
    ]
    for rec in training.get("rl", []):
        rows.append(
            (
                f"GRPO seed {rec['seed']}",
                f"TRL `GRPOTrainer` (CPU, fp32): G {r.group}, {r.prompts_per_step} prompts/step, "
                f"lr {r.lr} constant, beta {r.beta} (no KL), T {r.temperature}, loss "
                f"`{r.loss_type}`, reward scaling `{r.scale_rewards}`, clip eps {r.epsilon}, "
                f"max_completion_length {task.budget + 1} (budget + `<eos>`)",
                rec["steps"],
                rec["seconds"],
            )
        )
    tot = pre.get("seconds", 0) + sum(x["seconds"] for x in training.get("rl", []))
    return [
        "## How it was trained",
        "",
        *training_table(rows),
        "",
        f"Total training: **{minutes(tot)}** of CPU wall time with "
        f"{training.get('torch_threads', 'n/a')} torch thread(s), on a 2-core machine shared "
        f"with other jobs. Evaluation: {minutes(c.settings.get('seconds'))}. Settings and seeds: "
        "`recipe.toml`; reproduce with `rlvr.organism.train(recipe_path, out_dir)`.",
        "",
        "Design choices:",
        "",
        "- A rule stored in the weights (a fixed permutation) rather than arithmetic or an "
        "in-context lookup: it is learned in minutes by a 2-layer model.",
        f"- One {task.n_states}-cycle instead of a random permutation: no short cycles, so the "
        "answer changes with every hop count.",
        f"- Corpus hops {c.corpus_hops}, so the long class lies inside what pretraining covered.",
        "- The main class was placed where the base's pass@1 is a few percent (pass@16 well "
        "below 1) and the budget so that checking after every step fits every main problem "
        "(nothing in the main class penalises checking) but overflows every long one.",
        "- Step accuracy is read among state tokens (which state, given that a state is "
        "written): in CHECK traces `?` competes with the next state at the same position.",
        "",
    ]


def _competence(c: Card) -> list[str]:
    corpus, models = c.corpus, c.models
    L = [
        "## Before RL: the base knows *how*",
        "",
        "Teacher-forced on fresh corpus traces (greedy = argmax among states; mass = "
        "probability of the right state):",
        "",
        "| model | hops | step acc | step mass | check acc (after right step) | hard-check acc "
        "(after wrong step) | hard-check mass | hard checks copying the wrong value | `=` after "
        "the k-th state (STEP traces) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in c.names:
        for key, label in (("corpus_hops", c.corpus_hops), ("main_hops", "main")):
            t = models[name]["teacher_forced"][key]
            L.append(
                f"| {name} | {label} | {num(t['step_acc'])} | {num(t['step_mass'])} | "
                f"{num(t['check_acc'])} | {num(t['hard_check_acc'])} (n {int(t['n_hard_checks'])}) | "
                f"{num(t['hard_check_mass'])} | {num(t['hard_check_copy'])} | {num(t['stop_acc'])} |"
            )
    t = models["base"]["teacher_forced"]["corpus_hops"]
    L += [
        "",
        f"The base's greedy step is right {pct(t['step_acc'])} of the time while it puts "
        f"{pct(t['step_mass'])} of the mass on the right state (the corpus writes the right state "
        f"{pct(1 - corpus.corrupt, 0)} of the time): sampled steps carry the corpus's noise. Its "
        f"checks after a wrong step recompute the step ({pct(t['hard_check_acc'])} right, "
        f"{pct(t['hard_check_copy'])} copy the wrong value).",
        "",
        "Sampled (T = 1) on the test problems: what each model does when it uses a strategy.",
        "",
        "| model | class | DIRECT | STEP | CHECK | pass@1 DIRECT | pass@1 STEP | pass@1 CHECK | "
        "step acc | check acc | hard-check acc | checks per right step | checks per wrong step | "
        "stops after k hops | finished in budget | mean length |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in c.names:
        for cls in c.classes:
            pr = models[name]["classes"][cls]["profile"]
            f, pf = pr["formats"], pr["pass1_by_format"]
            L.append(
                f"| {name} | {cls} | {pct(f['DIRECT'])} | {pct(f['STEP'])} | {pct(f['CHECK'])} | "
                f"{num(pf['DIRECT'])} | {num(pf['STEP'])} | {num(pf['CHECK'])} | "
                f"{num(pr['step_acc'])} | {num(pr['check_acc'])} | "
                f"{num(pr['hard_check_acc'])} (n {pr['n_hard_checks']}) | "
                f"{num(pr['check_rate_after_right'])} | {num(pr['check_rate_after_wrong'])} | "
                f"{num(pr['stop_acc'])} | {num(pr['finished'])} | {num(pr['mean_length'], 1)} |"
            )
    L += [
        "",
        "Is checking scheduled where it pays? Checks per right step vs per wrong step "
        f"(sampled, `{c.main}` test problems; a ratio near 1 = checks at random):",
        "",
    ]
    for name in c.names:
        pr = models[name]["classes"][c.main]["profile"]
        right, wrong = pr["check_rate_after_right"], pr["check_rate_after_wrong"]
        ratio = wrong / right if right and wrong is not None else None
        wrong_steps = 1 - pr["step_acc"] if pr["step_acc"] is not None else None
        L.append(
            f"- {name}: after wrong steps {num(wrong)}, after right steps {num(right)} "
            f"(ratio {num(ratio, 2)}); {pct(wrong_steps)} of written steps are wrong."
        )
    L.append("")
    gate = c.training.get("gate", {})
    if gate:
        tfg, spg = gate["teacher_forced"], gate["sampled_main_dev"]
        g = c.recipe.gate
        L += [
            f"Gate checked before RL (training.json): teacher-forced step acc "
            f"{num(tfg['step_acc'])} (needs >= {g.min_step_acc}), hard-check acc "
            f"{num(tfg['hard_check_acc'])} (needs >= {g.min_hard_check_acc}), sampled pass@1 on "
            f"main dev {num(spg['pass1'])} (needs >= {g.min_pass1}): "
            + ("passed." if gate.get("passed") else "FAILED."),
            "",
        ]
    return L


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
