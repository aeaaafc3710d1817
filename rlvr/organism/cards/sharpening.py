"""The first organism's card (``data/organism-sharpening``), rendered from measured results.

Every number comes from ``results.json`` / ``training.json``, and every claim is worded from
those numbers. :func:`render` joins one function per section: the sections on the organism
itself (the task, how it was trained, the base's competence) are here, those on what RL did
(pass@k, crossover, formats over RL steps, weights, summary) and the files in
:mod:`.sharpening_rl`.
"""

from __future__ import annotations

from typing import Any

from ..recipe import Recipe
from .parts import Card, corpus_table, minutes, num, pct, training_table
from .sharpening_rl import RL_SECTIONS

__all__ = ["render"]


def render(recipe: Recipe, training: dict[str, Any], results: dict[str, Any]) -> str:
    return Card(recipe, training, results).join(
        (
            _intro,
            _task,
            _training,
            _competence,
            *RL_SECTIONS,
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
