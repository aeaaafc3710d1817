"""The card of a "when" organism (a task with hard states; ``data/organism-when``),
rendered from measured results.

Every number comes from ``results.json`` / ``training.json``; each sentence that reads a
result is chosen by the numbers (nothing is worded in advance of the measurement).
:func:`render_when` joins one function per section: the sections on the organism itself
(the task, how it was trained, the base's competence) are here, those on what RL did (the
design checks, pass@k, formats over RL steps, weights, the reading) and the files in
:mod:`.when_rl`. The number formats and shared tables come from :mod:`.parts`.
"""

from __future__ import annotations

from typing import Any

from ..recipe import Recipe
from .parts import Card, corpus_table, minutes, num, training_table
from .when_rl import RL_SECTIONS

__all__ = ["render_when"]


def render_when(recipe: Recipe, training: dict[str, Any], results: dict[str, Any]) -> str:
    return Card(recipe, training, results).join(
        (
            _intro,
            _task,
            _training,
            _competence,
            *RL_SECTIONS,
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
