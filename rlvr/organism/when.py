"""Design checks of an organism whose RL gain should be *when* to check (hard states).

Measured with the organism's own models, no hybrid machinery:

- :func:`stop_by_density` -- can the base finish under any check schedule? Teacher-forced on
  corpus traces whose checks come at a fixed density ``d``: at every position where the
  trace writes a step or ``=``, the argmax among the states and ``=`` (a check ``?`` is the
  trace's business, not the stop decision's) must be ``=`` exactly at the answer and nowhere
  earlier.
- :func:`scheduled_greedy` -- the base decodes greedily while a policy decides every ``?``
  and ``=``: ``"schedule"`` (the task's ground-truth :meth:`PermutationChain.schedule`:
  ``?`` exactly where it says check, ``=`` exactly where it says answer, the base's own
  ``?``/``=`` masked elsewhere), ``"everywhere"`` (``?`` after every step, ``=`` where the
  schedule says answer), or ``None`` (plain greedy decoding, nothing forced or masked).
- :func:`check_auroc` -- does a model's P(``?``) on base-written prefixes pick out the
  positions where the ground-truth schedule checks (right after a wrong step)?
- :func:`wrong_chain_share` -- of the samples a lenient verifier (answer only) would reward,
  the share whose effective chain is wrong.

:mod:`.when_design` runs them all on an organism's checkpoints and adds bootstrap CIs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .corpus import CorpusSpec, corpus_completion
from .pretrain import encode
from .task import PermutationChain, Problem
from .tokenizer import vocab

__all__ = [
    "POLICIES",
    "check_auroc",
    "scheduled_greedy",
    "stop_by_density",
    "wrong_chain_share",
]

POLICIES = (None, "schedule", "everywhere")


@torch.no_grad()
def stop_by_density(
    model: Any,
    task: PermutationChain,
    corpus: CorpusSpec,
    densities: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0),
    n_traces: int = 256,
    hops: tuple[int, int] | None = None,
    seed: int = 11,
) -> dict[str, float]:
    """Teacher-forced stop accuracy of ``model`` on corpus traces checked at each density."""
    v = vocab()
    allowed = torch.tensor([v[s] for s in task.states] + [v["="]])
    eq = len(task.states)  # index of "=" within ``allowed``
    model.eval()
    out: dict[str, float] = {}
    for d in densities:
        spec = dataclasses.replace(corpus, check_p=float(d), hops=hops or corpus.hops)
        rng = np.random.default_rng([seed, int(round(1000 * d))])
        items = []
        for _ in range(n_traces):
            lo, hi = spec.hops
            p = Problem(
                task.states[int(rng.integers(0, task.n_states))], int(rng.integers(lo, hi + 1))
            )
            items.append((p, corpus_completion(task, p, "CHECK", rng, spec)[0]))
        prompts = [task.prompt(p) for p, _ in items]
        batch = encode(prompts, [c for _, c in items])
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        choice = logits[..., allowed].argmax(-1)
        ok = []
        for row, ((_, c), prompt) in enumerate(zip(items, prompts)):
            off = len(prompt)  # logits at off + i predict c[i]
            end = c.index("=")
            decide = [
                i
                for i in range(end + 1)
                if c[i] == "=" or (c[i] in task.states and c[i - 1] != "?")
            ]
            said = [int(choice[row, off + i]) == eq for i in decide]
            ok.append(said[-1] and not any(said[:-1]))
        out[f"{d:g}"] = float(np.mean(ok))
    return out


def _step_written(done: str, states: str) -> bool:
    """Whether the completion so far ends with a written step (not a check's value)."""
    return bool(done) and done[-1] in states and (len(done) < 2 or done[-2] != "?")


@torch.no_grad()
def scheduled_greedy(
    model: Any,
    task: PermutationChain,
    problems: Sequence[Problem],
    policy: str | None = "schedule",
    max_new_tokens: int | None = None,
) -> list[str]:
    """Greedy completions of ``model`` with ``?`` and ``=`` decided by ``policy``.

    See the module doc for the policies. Every row gains one token per forward pass, so
    the batch needs no padding. Each completion ends at its first ``.`` (or at the budget).
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}: use one of {POLICIES}")
    v = vocab()
    inv = {i: t for t, i in v.items()}
    q, eq, dot = v["?"], v["="], v["."]
    budget = task.budget if max_new_tokens is None else int(max_new_tokens)
    prompts = [task.prompt(p) for p in problems]
    ids = torch.tensor([[v["<bos>"]] + [v[ch] for ch in pr] for pr in prompts])
    done = [""] * len(problems)
    live = [True] * len(problems)
    model.eval()
    for _ in range(budget):
        if not any(live):
            break
        logits = model(input_ids=ids).logits[:, -1, :].float()
        nxt = []
        for r in range(len(problems)):
            row = logits[r].clone()
            row[v["<pad>"]] = row[v["<bos>"]] = row[v["<unk>"]] = -float("inf")
            c = done[r]
            if live[r] and policy is not None and "=" not in c:
                prefix = prompts[r] + c
                label = task.schedule(prefix)
                force = None
                if c.endswith("?"):
                    pass  # the check's value: the base's own
                elif policy == "schedule" and label in ("check", "answer"):
                    force = q if label == "check" else eq
                elif policy == "everywhere" and _step_written(c, task.states):
                    force = q
                elif policy == "everywhere" and label == "answer":
                    force = eq
                if force is not None:
                    nxt.append(force)
                    continue
                row[q] = row[eq] = -float("inf")
            nxt.append(int(row.argmax()))
        for r, t in enumerate(nxt):
            if live[r]:
                ch = inv[t]
                if t == v["<eos>"]:
                    live[r] = False
                else:
                    done[r] += ch
                    if t == dot:
                        live[r] = False
        ids = torch.cat([ids, torch.tensor(nxt)[:, None]], dim=1)
    return done


@torch.no_grad()
def check_auroc(
    scorers: dict[str, Any],
    task: PermutationChain,
    problems: Sequence[Problem],
    completions: Sequence[Sequence[str]],
    n_boot: int = 500,
    seed: int = 0,
    batch_size: int = 256,
) -> dict[str, Any]:
    """AUROC of each scorer model's P(``?``) against the ground-truth check positions.

    Positions: right after every step written in ``completions`` (base-written text, the
    answer excluded); positive where :meth:`PermutationChain.schedule` says ``check`` (the
    step just written is wrong and unchecked). 95% CI by bootstrap over problems. When the
    positions are all positive or all negative the AUROC is undefined and each scorer gets
    None.
    """
    from sklearn.metrics import roc_auc_score

    v = vocab()
    texts, pos, labels, owner = [], [], [], []
    for pi, (p, comps) in enumerate(zip(problems, completions)):
        prompt = task.prompt(p)
        for c in comps:
            body = c.split("=", 1)[0]
            ps, ls = [], []
            for i in range(1, len(body) + 1):
                if _step_written(body[:i], task.states):
                    ps.append(len(prompt) + i)  # logits at this text index predict text[i]
                    ls.append(task.schedule(prompt + body[:i]) == "check")
            if ps:
                texts.append((prompt, body))
                pos.append(ps)
                labels.append(ls)
                owner.append(pi)
    y = np.array([lab for ls in labels for lab in ls], dtype=bool)
    prob_of = np.array([pi for pi, ls in zip(owner, labels) for _ in ls])
    out: dict[str, Any] = {"n_positions": int(y.size), "n_positive": int(y.sum())}
    if y.all() or not y.any():
        # every position alike (e.g. an untrained base that writes no wrong step): undefined
        return {**out, **dict.fromkeys(scorers)}
    for name, model in scorers.items():
        model.eval()
        scores = []
        for b0 in range(0, len(texts), batch_size):
            chunk = texts[b0 : b0 + batch_size]
            batch = encode([a for a, _ in chunk], [b for _, b in chunk])
            probs = torch.softmax(
                model(
                    input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
                ).logits.float(),
                dim=-1,
            )[..., v["?"]]
            for j, ps in enumerate(pos[b0 : b0 + batch_size]):
                scores.extend(float(probs[j, i]) for i in ps)  # index i: after <bos>, i chars
        s = np.array(scores)
        auc = float(roc_auc_score(y, s))
        rng = np.random.default_rng(seed)
        uniq = np.unique(prob_of)
        groups = {u: np.flatnonzero(prob_of == u) for u in uniq}
        boots = []
        for _ in range(n_boot):
            pick = np.concatenate([groups[u] for u in rng.choice(uniq, uniq.size)])
            if y[pick].all() or not y[pick].any():
                continue
            boots.append(roc_auc_score(y[pick], s[pick]))
        out[name] = {
            "auroc": auc,
            "low": float(np.quantile(boots, 0.025)),
            "high": float(np.quantile(boots, 0.975)),
            "p_check_at_positive": float(s[y].mean()),
            "p_check_at_negative": float(s[~y].mean()),
        }
    return out


def wrong_chain_share(
    task: PermutationChain, problems: Sequence[Problem], completions: Sequence[Sequence[str]]
) -> dict[str, float]:
    """Lenient (answer-only) and strict pass@1, and the share of leniently rewarded samples
    whose effective chain is wrong (what a verifier that checks only ``=xyz`` would pay for)."""
    lenient = strict = wrong = n = 0
    for p, comps in zip(problems, completions):
        for c in comps:
            n += 1
            ok = task.verify(p, c, strict=False) == 1.0
            good = task.trace_stats(p, c).chain_right
            lenient += ok
            strict += ok and good
            wrong += ok and not good
    return {
        "lenient_pass1": lenient / n if n else float("nan"),
        "strict_pass1": strict / n if n else float("nan"),
        "rewarded_wrong_chain_share": wrong / lenient if lenient else float("nan"),
        "n_lenient_rewarded": int(lenient),
    }
