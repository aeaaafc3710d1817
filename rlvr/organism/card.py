"""Render the organism card (markdown) from measured results; every number comes from
``results.json`` / ``training.json``, and every claim is worded from those numbers."""

from __future__ import annotations

from typing import Any

from .recipe import Recipe
from .task import FORMATS

__all__ = ["render"]


def _p(x: float | None, d: int = 1) -> str:
    return "n/a" if x is None else f"{100 * x:.{d}f}%"


def _f(x: float | None, d: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{d}f}"


def _ci(mean: float, low: float, high: float, d: int = 3) -> str:
    return f"{mean:.{d}f} [{low:.{d}f}, {high:.{d}f}]"


def _at(curve: dict[str, Any], k: int) -> tuple[float, float, float]:
    i = curve["ks"].index(k)
    return curve["mean"][i], curve["low"][i], curve["high"][i]


def _minutes(s: float | None) -> str:
    return "n/a" if s is None else f"{s / 60:.1f} min ({s:.0f} s)"


def render(recipe: Recipe, training: dict[str, Any], results: dict[str, Any]) -> str:
    task = recipe.task
    S = results["settings"]
    models = results["models"]
    names = list(models)
    rl_names = names[1:]
    classes = list(S["classes"])
    n = S["n"]
    ks = S["ks"]
    corpus = recipe.pretrain.corpus
    L: list[str] = []
    add = L.append

    add("# The model organism: a tiny base/RL pair on a verifiable permutation-chain task")
    add("")
    add(
        "A base model pretrained from scratch on a mixture of solution formats, and the same "
        "model after RL with verifiable rewards (GRPO), two RL seeds. Everything below was "
        "measured by `rlvr.organism.evaluate` on the files in this folder; the card is "
        "rendered from `results.json` by `rlvr.organism.write_card`."
    )
    add("")
    add("## The task")
    add("")
    add(
        f"- {task.n_states} states (single characters `a`-`z`, `A`-`Z`), one secret permutation "
        f"`f` drawn from seed {task.seed} as a single {task.n_states}-cycle (a chain never "
        "revisits a state, so a miscounted chain is never right by accident)."
    )
    add(
        "- Prompt `{s0}{k:02d}:` (start state, hop count). Answer: the last three states "
        f"`s_(k-2) s_(k-1) s_k` of the true chain ({task.n_states}^3 = {task.n_states**3:,} "
        "possible answers)."
    )
    add(
        f"- Reward 1 when the completion is `<body>=xyz.` with the right `xyz` and the `.` "
        f"within the completion budget of **{task.budget} tokens** (one token per character); "
        "the same budget bounds RL rollouts and evaluation samples."
    )
    cls_txt = ", ".join(f"`{c}` = hops {lo}-{hi}" for c, (lo, hi) in S["classes"].items())
    add(
        f"- Classes: {cls_txt}. RL trains on `main` only. In `long`, a trace that checks after "
        f"every step (3k + 5 tokens) overflows the budget while a STEP trace (k + 5) fits; "
        f"every long hop count lies inside the pretraining range {corpus.hops[0]}-{corpus.hops[1]}."
    )
    sizes = "; ".join(
        f"{c}: " + ", ".join(f"{k} {v}" for k, v in recipe.split_sizes[c].items())
        for c in sorted(recipe.split_sizes)
    )
    add(
        f"- Splits (`splits/*.jsonl`, disjoint (start, hops) pairs, seed {recipe.split_seed}; "
        f"-1 = the rest): {sizes}."
    )
    add("")
    add("Pretraining corpus formats, chosen per trace at random (never at the right times):")
    add("")
    add("| format | shape | share | noise |")
    add("|---|---|---|---|")
    add(
        f"| DIRECT | `=xyz.` | {corpus.mix[0]:.2f} | right with p {corpus.direct_right} "
        "(else three random states): a guess |"
    )
    add(
        f"| STEP | `bcd...=xyz.` | {corpus.mix[1]:.2f} | each written state wrong with p "
        f"{corpus.corrupt}; the chain continues from what was written |"
    )
    add(
        f"| CHECK | `bc?cd...=xyz.` | {corpus.mix[2]:.2f} | like STEP; after a step, with p "
        f"{corpus.check_p}, `?v` with `v = f(state before the step)`, always right; the chain "
        "continues from `v` (a check repairs a wrong step) |"
    )
    add("")
    add(
        "Labelled segments for probes and routers (`PermutationChain.spans` / `segment_start`): "
        "`step` (one written state), `stepwise` (the first written state: the decision to work "
        "step by step, counterpart of `direct`), `check` (`?v`), `answer` (`=xyz` after a body), "
        "`direct` (`=xyz` as the whole completion). The format decision is sampled at the first "
        "completion token from a distribution the prompt alone fixes, so no vector read at the "
        "prompt's last position separates `stepwise` from `direct`: acting on that decision "
        "takes a handoff (or re-rank), not a base-model vector."
    )
    add("")

    # ------------------------------------------------------------------ training
    add("## How it was trained")
    add("")
    pre = training.get("pretrain", {})
    m = recipe.model
    p = recipe.pretrain
    r = recipe.rl
    add("| stage | settings | steps | wall time |")
    add("|---|---|---|---|")
    add(
        f"| pretraining (from scratch) | HF `LlamaForCausalLM`, {m.n_layers} layers, d_model "
        f"{m.d_model}, {m.n_heads} heads, d_ff {m.d_ff}, tied embeddings, "
        f"{pre.get('n_params', 0):,} parameters; AdamW lr {p.lr} (warm-up {p.warmup}, cosine to "
        f"{p.final_lr_ratio}x), batch {p.batch_size} fresh corpus traces, seed {p.seed} | "
        f"{pre.get('steps', p.steps)} | {_minutes(pre.get('seconds'))} |"
    )
    for rec in training.get("rl", []):
        add(
            f"| GRPO seed {rec['seed']} | TRL `GRPOTrainer` (CPU, fp32): G {r.group}, "
            f"{r.prompts_per_step} prompts/step, lr {r.lr} constant, beta {r.beta} (no KL), "
            f"T {r.temperature}, loss `{r.loss_type}`, reward scaling `{r.scale_rewards}`, "
            f"clip eps {r.epsilon}, max_completion_length {task.budget + 1} (budget + `<eos>`) | "
            f"{rec['steps']} | {_minutes(rec['seconds'])} |"
        )
    tot = pre.get("seconds", 0) + sum(x["seconds"] for x in training.get("rl", []))
    add("")
    add(
        f"Total training: **{_minutes(tot)}** of CPU wall time with "
        f"{training.get('torch_threads', 'n/a')} torch thread(s), on a 2-core machine shared "
        f"with other jobs. Evaluation: {_minutes(S.get('seconds'))}. Settings and seeds: "
        "`recipe.toml`; reproduce with `rlvr.organism.train(recipe_path, out_dir)`."
    )
    add("")
    add("Design choices:")
    add("")
    add(
        "- A rule stored in the weights (a fixed permutation) rather than arithmetic or an "
        "in-context lookup: it is learned in minutes by a 2-layer model."
    )
    add(
        f"- One {task.n_states}-cycle instead of a random permutation: no short cycles, so the "
        "answer changes with every hop count."
    )
    add(
        f"- Corpus hops {corpus.hops[0]}-{corpus.hops[1]}, so the long class lies inside what "
        "pretraining covered."
    )
    add(
        "- The main class was placed where the base's pass@1 is a few percent (pass@16 well "
        "below 1) and the budget so that checking after every step fits every main problem "
        "(nothing in the main class penalises checking) but overflows every long one."
    )
    add(
        "- Step accuracy is read among state tokens (which state, given that a state is "
        "written): in CHECK traces `?` competes with the next state at the same position."
    )
    add("")

    # ------------------------------------------------------------------ gate
    add("## Before RL: the base knows *how*")
    add("")
    tf = models["base"]["teacher_forced"]
    add(
        "Teacher-forced on fresh corpus traces (greedy = argmax among states; mass = "
        "probability of the right state):"
    )
    add("")
    add(
        "| model | hops | step acc | step mass | check acc (after right step) | hard-check acc (after wrong step) | hard-check mass | hard checks copying the wrong value | `=` after the k-th state (STEP traces) |"
    )
    add("|---|---|---|---|---|---|---|---|---|")
    for name in names:
        for key, label in (
            ("corpus_hops", f"{corpus.hops[0]}-{corpus.hops[1]}"),
            ("main_hops", "main"),
        ):
            t = models[name]["teacher_forced"][key]
            add(
                f"| {name} | {label} | {_f(t['step_acc'])} | {_f(t['step_mass'])} | "
                f"{_f(t['check_acc'])} | {_f(t['hard_check_acc'])} (n {int(t['n_hard_checks'])}) | "
                f"{_f(t['hard_check_mass'])} | {_f(t['hard_check_copy'])} | {_f(t['stop_acc'])} |"
            )
    add("")
    t = tf["corpus_hops"]
    add(
        f"The base's greedy step is right {_p(t['step_acc'])} of the time while it puts "
        f"{_p(t['step_mass'])} of the mass on the right state (the corpus writes the right state "
        f"{_p(1 - corpus.corrupt, 0)} of the time): sampled steps carry the corpus's noise. Its "
        f"checks after a wrong step recompute the step ({_p(t['hard_check_acc'])} right, "
        f"{_p(t['hard_check_copy'])} copy the wrong value)."
    )
    add("")
    add("Sampled (T = 1) on the test problems: what each model does when it uses a strategy.")
    add("")
    add(
        "| model | class | DIRECT | STEP | CHECK | pass@1 DIRECT | pass@1 STEP | pass@1 CHECK | step acc | check acc | hard-check acc | checks per right step | checks per wrong step | stops after k hops | finished in budget | mean length |"
    )
    add("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name in names:
        for cls in classes:
            pr = models[name]["classes"][cls]["profile"]
            f, pf = pr["formats"], pr["pass1_by_format"]
            add(
                f"| {name} | {cls} | {_p(f['DIRECT'])} | {_p(f['STEP'])} | {_p(f['CHECK'])} | "
                f"{_f(pf['DIRECT'])} | {_f(pf['STEP'])} | {_f(pf['CHECK'])} | "
                f"{_f(pr['step_acc'])} | {_f(pr['check_acc'])} | "
                f"{_f(pr['hard_check_acc'])} (n {pr['n_hard_checks']}) | "
                f"{_f(pr['check_rate_after_right'])} | {_f(pr['check_rate_after_wrong'])} | "
                f"{_f(pr['stop_acc'])} | {_f(pr['finished'])} | {_f(pr['mean_length'], 1)} |"
            )
    add("")
    main = "main" if "main" in classes else classes[0]
    add(
        "Is checking scheduled where it pays? Checks per right step vs per wrong step "
        f"(sampled, `{main}` test problems; a ratio near 1 = checks at random):"
    )
    add("")
    for name in names:
        pr = models[name]["classes"][main]["profile"]
        right, wrong = pr["check_rate_after_right"], pr["check_rate_after_wrong"]
        ratio = wrong / right if right and wrong is not None else None
        add(
            f"- {name}: after wrong steps {_f(wrong)}, after right steps {_f(right)} "
            f"(ratio {_f(ratio, 2)}); {_p(1 - pr['step_acc'] if pr['step_acc'] is not None else None)} "
            "of written steps are wrong."
        )
    add("")
    gate = training.get("gate", {})
    if gate:
        tfg, spg = gate["teacher_forced"], gate["sampled_main_dev"]
        g = recipe.gate
        add(
            f"Gate checked before RL (training.json): teacher-forced step acc "
            f"{_f(tfg['step_acc'])} (needs >= {g.min_step_acc}), hard-check acc "
            f"{_f(tfg['hard_check_acc'])} (needs >= {g.min_hard_check_acc}), sampled pass@1 on "
            f"main dev {_f(spg['pass1'])} (needs >= {g.min_pass1}): "
            + ("passed." if gate.get("passed") else "FAILED.")
        )
        add("")

    # ------------------------------------------------------------------ pass@k
    add(f"## pass@1 and pass@k (T = {S['temperature']}, n = {n} samples per problem)")
    add("")
    probs = ", ".join(f"{c}: {v}" for c, v in S["problems_per_class"].items())
    add(
        f"Test problems per class: {probs}. Unbiased pass@k (`rlvr.passk`), 95% bootstrap CIs "
        f"over problems ({S['n_boot']} resamples). Greedy = temperature 0, one sample."
    )
    add("")
    add(
        "| model | "
        + " | ".join(f"pass@1 {c}" for c in [*classes, "all"])
        + " | "
        + " | ".join(f"greedy {c}" for c in classes)
        + " |"
    )
    add("|---|" + "---|" * (2 * len(classes) + 1))
    for name in names:
        row = [_ci(*_at(models[name]["passk"][c], 1)) for c in [*classes, "all"]]
        row += [_f(models[name]["classes"][c]["greedy_test"]) for c in classes]
        add(f"| {name} | " + " | ".join(row) + " |")
    add("")
    for cls in [*classes, "all"]:
        add(f"pass@k, class `{cls}`:")
        add("")
        add("| k | " + " | ".join(names) + " |")
        add("|---|" + "---|" * len(names))
        for k in ks:
            add(
                f"| {k} | "
                + " | ".join(_ci(*_at(models[nm]["passk"][cls], k)) for nm in names)
                + " |"
            )
        add("")
    add(
        "Base pass@1 by hop count (test problems): "
        + "; ".join(
            f"{cls}: "
            + ", ".join(
                f"k={h} {_f(v, 3)}"
                for h, v in models["base"]["classes"][cls]["pass1_by_hops"].items()
            )
            for cls in classes
        )
    )
    add("")

    # ------------------------------------------------------------------ crossover
    add("## Crossover: does the base overtake RL at large k?")
    add("")
    add(
        "k* is the smallest k where mean base pass@k >= mean RL pass@k (`rlvr.passk.crossover`, "
        "paired bootstrap over problems); a tie at saturation (both at 1.000) counts as k*. "
        "'base > RL' is the smallest k where the 95% CI of base - RL lies above 0."
    )
    add("")
    add(
        "| RL seed | class | k* | 95% CI of k* | resamples crossing | base > RL from k | "
        f"base - RL at k = 1 | base - RL at k = {ks[-1]} | "
        "coverage both / base-only / RL-only / neither |"
    )
    add("|---|---|---|---|---|---|---|---|---|")
    sig: list[tuple[str, str, int]] = []
    ties: list[tuple[str, str, int]] = []
    for name in rl_names:
        for cls in [*classes, "all"]:
            c = results["comparisons"][name][cls]
            x = c["crossover"]
            cov = c["coverage"]
            above = [k for k, lo in zip(x["ks"], x["diff_low"]) if lo > 0]
            k_sig = above[0] if above else None
            d0 = _ci(x["diff"][0], x["diff_low"][0], x["diff_high"][0])
            d1 = _ci(x["diff"][-1], x["diff_low"][-1], x["diff_high"][-1])
            ci = "n/a" if x["ci_low"] is None else f"[{x['ci_low']}, {x['ci_high']}]"
            add(
                f"| {name} | {cls} | {x['k_star'] if x['k_star'] is not None else 'none'} | {ci} | "
                f"{_p(x['p_exists'])} | {k_sig if k_sig is not None else 'never'} | {d0} | {d1} | "
                + " / ".join(
                    str(cov[key]["count"]) for key in ("both", "base_only", "rl_only", "neither")
                )
                + " |"
            )
            if k_sig is not None:
                sig.append((name, cls, k_sig))
            elif x["k_star"] is not None:
                ties.append((name, cls, x["k_star"]))
    add("")
    if sig:
        add(
            "The base is significantly above RL: "
            + "; ".join(
                f"{nm} on `{cls}` from k = {k}" + (" (already at k = 1)" if k == ks[0] else "")
                for nm, cls, k in sig
            )
            + "."
        )
    if ties:
        add(
            "The base only ties RL (no significant difference): "
            + "; ".join(f"{nm} on `{cls}` from k = {k}" for nm, cls, k in ties)
            + "."
        )
    if not sig and not ties:
        add(
            f"No crossover: RL pass@k stays above the base's up to k = {ks[-1]} in every class "
            "and seed."
        )
    add("")

    # ------------------------------------------------------------------ formats
    add("## Formats over RL steps")
    add("")
    add(
        f"Shares of the rollouts' formats per RL step (`logs/rl-seed*.jsonl`, "
        f"{r.prompts_per_step * r.group} rollouts per step; table rows pool 5 steps around the "
        "step shown)."
    )
    add("")
    for name, fs in results.get("formats_over_rl", {}).items():
        if fs["collapse_step"] is not None:
            head = (
                f"**{name}**: one format held >= {_p(fs['threshold'], 0)} of the rollouts from "
                f"step {fs['collapse_step']} on (first reached; collapsed onto "
                f"{fs['collapsed_onto']}); dominant at the last step: {fs['dominant_last']}. "
            )
        else:
            head = (
                f"**{name}**: no format reached {_p(fs['threshold'], 0)} of a step's rollouts; "
                f"dominant at the last step: {fs['dominant_last']}. "
            )
        add(head + f"Format entropy {fs['entropy_first']:.2f} -> {fs['entropy_last']:.2f} bits.")
        add("")
        add(
            "| step | "
            + " | ".join(FORMATS)
            + " | mean reward | checks per step | step acc | mean length |"
        )
        add("|---|" + "---|" * (len(FORMATS) + 4))
        for row in fs["table"]:
            add(
                f"| {row['step']} | "
                + " | ".join(_p(row["shares"][f]) for f in FORMATS)
                + f" | {_f(row['reward'])} | {_f(row['checks_per_step'])} | {_f(row['step_acc'])} | {_f(row['mean_length'], 1)} |"
            )
        add("")

    fo = results.get("formats_over_rl", {})
    winners = {fs["collapsed_onto"] for fs in fo.values()}
    if len(fo) > 1 and None not in winners:
        if len(winners) == 1:
            add(
                f"Every RL seed collapsed onto the same format ({winners.pop()}): the winner did "
                "not depend on the seed here."
            )
        else:
            add(
                "The RL seeds collapsed onto different formats ("
                + ", ".join(f"{nm}: {fs['collapsed_onto']}" for nm, fs in fo.items())
                + "): the winning format depended on the seed."
            )
        add("")

    # ------------------------------------------------------------------ weights
    add("## What RL changed in the weights")
    add("")
    w = results["weights"]
    add(
        "| RL seed | updated share, bf16 (abs diff > 1e-5) | updated share, fp32 (any change) | mean rank(dW)/min(m, n) |"
    )
    add("|---|---|---|---|")
    for name in rl_names:
        sp = w["sparsity"][name]
        add(
            f"| {name} | {_p(sp['bf16']['updated_share'])} (sparsity {_p(sp['bf16']['sparsity'])}) | "
            f"{_p(sp['fp32']['updated_share'])} (sparsity {_p(sp['fp32']['sparsity'])}) | "
            f"{_f(w['rank'][name]['mean'])} |"
        )
    add("")
    for dtype, ov in w.get("overlap", {}).items():
        a, b = ov["pair"]
        add(
            f"Seed overlap ({dtype}): of the parameters {a} updated, {_p(ov['overlap_1'])} were "
            f"also updated by {b} (chance {_p(ov['chance_1'])}); of {b}'s, {_p(ov['overlap_2'])} "
            f"(chance {_p(ov['chance_2'])})."
        )
    add("")
    bf = [w["sparsity"][nm]["bf16"]["updated_share"] for nm in rl_names]
    add(
        "At this model size and learning rate "
        + (
            "RL updated most parameters even in bf16: the sparse-subnetwork picture of large "
            "models does not appear here."
            if bf and min(bf) > 0.5
            else "RL left a large share of parameters unchanged in bf16."
        )
    )
    add("")

    # ------------------------------------------------------------------ summary
    add("## What the organism shows, and what it does not")
    add("")
    for cls in classes:
        for name in names:
            c = models[name]["passk"][cls]
            parts = [f"pass@{k} {_ci(*_at(c, k))}" for k in (1, 16, ks[-1]) if k in ks]
            add(f"- {name} on `{cls}`: " + ", ".join(parts) + ".")
    add("")
    bpr = models["base"]["classes"][main]["profile"]
    for name in rl_names:
        pr = models[name]["classes"][main]["profile"]
        fs = results.get("formats_over_rl", {}).get(name)
        add(
            f"- {name}: sampled step accuracy on `{main}` {_f(bpr['step_acc'])} (base) -> "
            f"{_f(pr['step_acc'])}"
            + (
                " (RL sharpened a step whose greedy version the base already runs)"
                if pr["step_acc"] is not None
                and bpr["step_acc"] is not None
                and pr["step_acc"] - bpr["step_acc"] > 0.05
                else " (no sharpening)"
            )
            + "; formats "
            + ", ".join(f"{f} {_p(pr['formats'][f])}" for f in FORMATS)
            + (
                f"; one format above {_p(fs['threshold'], 0)} from RL step {fs['collapse_step']} "
                f"({fs['collapsed_onto']})"
                if fs and fs["collapse_step"] is not None
                else "; no format collapse"
            )
            + "."
        )
    for cls in classes:
        add(
            f"- Greedy (T = 0) accuracy on `{cls}`: "
            + ", ".join(f"{nm} {_f(models[nm]['classes'][cls]['greedy_test'])}" for nm in names)
            + " (the base's greedy steps are "
            + (
                "right: its T = 1 failures are sampling noise)."
                if models["base"]["classes"][cls]["greedy_test"] > 0.9
                else "not all right)."
            )
        )
    if len(classes) > 1:
        other = [c for c in classes if c != main][0]
        for name in rl_names:
            pr = models[name]["classes"][other]["profile"]
            add(
                f"- {name} on `{other}`: {_p(pr['finished'])} of samples finish within the "
                f"{task.budget}-token budget (base: "
                f"{_p(models['base']['classes'][other]['profile']['finished'])}); mean length "
                f"{_f(pr['mean_length'], 1)} tokens."
            )
    add("")
    add("## Files")
    add("")
    add(
        "- `base/`, "
        + ", ".join(f"`{nm}/`" for nm in rl_names)
        + ": safetensors + config + character tokenizer (load with `transformers.AutoModelForCausalLM` / `AutoTokenizer`, or `probes.handles.wrap(path)`)."
    )
    add("- `splits/{train,dev,test}.jsonl`: problems (`start`, `hops`, `cls`).")
    add("- `logs/rl-seed*.jsonl`: per RL step, `{step, formats, reward, ...}`.")
    add(
        "- `recipe.toml`: every seed and setting; `training.json`: times, steps, the gate; `results.json`: every number in this card."
    )
    add("")
    return "\n".join(L)
