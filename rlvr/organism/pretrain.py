"""Pretraining the organism's base model from scratch on the format-mixture corpus.

The base is a Hugging Face ``LlamaForCausalLM`` built from a config (2 layers, d_model 128 by
default) and trained with AdamW on freshly generated corpus traces (no fixed data set: each
step draws a new batch from a seeded generator). The loss covers the completion and the
closing ``<eos>``; the prompt is given.

:func:`competence` measures, teacher-forced on fresh corpus traces, whether the model runs
each strategy correctly: greedy step accuracy (the argmax after a state is ``f`` of it),
hard-check accuracy (the value of a ``?v`` that follows a *wrong* step: copying the written
value fails it), easy-check accuracy, and stop accuracy (``=`` exactly after the k-th hop).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .corpus import CorpusSpec, corpus_completion, corpus_trace
from .task import PermutationChain, Problem
from .tokenizer import build_tokenizer, vocab

__all__ = ["ModelSpec", "PretrainSpec", "build_model", "competence", "encode", "pretrain"]


@dataclass(frozen=True)
class ModelSpec:
    """Architecture of the organism (a Llama built from a config)."""

    d_model: int = 128
    n_layers: int = 2
    n_heads: int = 4
    d_ff: int = 512
    max_positions: int = 256
    rope_theta: float = 10000.0
    tie_embeddings: bool = True


@dataclass(frozen=True)
class PretrainSpec:
    """Optimiser and schedule of pretraining (linear warm-up, cosine decay to ``final_lr``)."""

    steps: int = 1200
    batch_size: int = 64
    lr: float = 2e-3
    final_lr_ratio: float = 0.1
    warmup: int = 50
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    seed: int = 0
    eval_every: int = 200
    corpus: CorpusSpec = field(default_factory=CorpusSpec)


def build_model(spec: ModelSpec, seed: int = 0):
    """A freshly initialised ``LlamaForCausalLM`` for the organism's vocabulary."""
    from transformers import LlamaConfig, LlamaForCausalLM

    if spec.d_model % spec.n_heads:
        raise ValueError(f"d_model={spec.d_model} must be divisible by n_heads={spec.n_heads}")
    v = vocab()
    config = LlamaConfig(
        vocab_size=len(v),
        hidden_size=spec.d_model,
        intermediate_size=spec.d_ff,
        num_hidden_layers=spec.n_layers,
        num_attention_heads=spec.n_heads,
        num_key_value_heads=spec.n_heads,
        head_dim=spec.d_model // spec.n_heads,
        max_position_embeddings=spec.max_positions,
        rope_theta=spec.rope_theta,
        tie_word_embeddings=spec.tie_embeddings,
        bos_token_id=v["<bos>"],
        eos_token_id=v["<eos>"],
        pad_token_id=v["<pad>"],
        attention_dropout=0.0,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = v["<pad>"]
    model.generation_config.eos_token_id = v["<eos>"]
    model.generation_config.bos_token_id = v["<bos>"]
    return model


def encode(prompts: list[str], completions: list[str]) -> dict[str, torch.Tensor]:
    """Right-padded ``input_ids``/``attention_mask``/``labels`` for ``<bos> prompt completion
    <eos>``; labels cover the completion and ``<eos>`` only (the same ids the tokenizer gives).
    """
    v = vocab()
    rows = []
    starts = []
    for p, c in zip(prompts, completions):
        ids = [v["<bos>"]] + [v[ch] for ch in p + c] + [v["<eos>"]]
        rows.append(ids)
        starts.append(1 + len(p))
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), v["<pad>"], dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    for i, (r, s) in enumerate(zip(rows, starts)):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
        labels[i, s : len(r)] = ids[i, s : len(r)]
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def _lr_at(step: int, spec: PretrainSpec) -> float:
    if step < spec.warmup:
        return spec.lr * (step + 1) / spec.warmup
    frac = (step - spec.warmup) / max(1, spec.steps - spec.warmup)
    cos = 0.5 * (1 + math.cos(math.pi * min(1.0, frac)))
    return spec.lr * (spec.final_lr_ratio + (1 - spec.final_lr_ratio) * cos)


@torch.no_grad()
def competence(
    model: Any,
    task: PermutationChain,
    corpus: CorpusSpec,
    n_traces: int = 512,
    seed: int = 12345,
    hops: tuple[int, int] | None = None,
    batch_size: int = 256,
) -> dict[str, float]:
    """Teacher-forced competence on fresh STEP and CHECK corpus traces.

    Returns greedy accuracy and mean probability of the right token at steps
    (``step_acc``, ``step_mass``), at checks after a right step (``check_acc``), at checks
    after a wrong step (``hard_check_acc``, ``hard_check_mass``, and ``hard_check_copy``: the
    share whose argmax copies the wrong written value), and ``stop_acc``: the share of STEP
    traces whose argmax is ``=`` after the k-th state and nowhere earlier.

    On a task with hard states, ``step_acc``/``step_mass`` cover the steps from the other
    states; steps from hard states give ``hard_step_acc`` (the argmax is the true successor),
    ``hard_step_mass`` and ``hard_step_wrong`` (the argmax is the task's fixed wrong
    successor), and ``n_hard_steps``.
    """
    v = vocab()
    rng = np.random.default_rng(seed)
    spec = dataclasses.replace(corpus, check_p=0.5, hops=hops or corpus.hops)
    before_of = {task.step(s): s for s in task.states}
    was_training = model.training
    model.eval()
    acc: dict[str, list[float]] = {
        k: []
        for k in (
            "step_acc",
            "step_mass",
            "check_acc",
            "hard_check_acc",
            "hard_check_mass",
            "hard_check_copy",
            "stop_acc",
            "hard_step_acc",
            "hard_step_mass",
            "hard_step_wrong",
        )
    }
    state_ids = torch.tensor([v[ch] for ch in task.states])
    for b0 in range(0, n_traces, batch_size):
        items = []
        for j in range(min(batch_size, n_traces - b0)):
            lo, hi = spec.hops
            p = Problem(
                task.states[int(rng.integers(0, task.n_states))], int(rng.integers(lo, hi + 1))
            )
            fmt = "STEP" if j % 2 == 0 else "CHECK"
            completion, events = corpus_completion(task, p, fmt, rng, spec)
            items.append((p, fmt, completion, events))
        prompts = [task.prompt(p) for p, *_ in items]
        batch = encode(prompts, [c for _, _, c, _ in items])
        logits = model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
        ).logits.float()
        top = logits.argmax(-1)
        # among states only: "which state", given that a state is written
        state_probs = torch.softmax(logits[..., state_ids], dim=-1)
        state_top = state_probs.argmax(-1)
        for row, ((_, fmt, completion, events), prompt) in enumerate(zip(items, prompts)):
            off = len(prompt)  # logits at off + i predict completion[i]
            for idx, kind, true in events:
                pos = off + idx
                guess = task.states[int(state_top[row, pos])]
                mass = float(state_probs[row, pos, task.states.index(true)])
                if kind in ("step", "step_wrong"):
                    acc["step_acc"].append(float(guess == true))
                    acc["step_mass"].append(mass)
                elif kind in ("hard_step", "hard_step_wrong"):
                    acc["hard_step_acc"].append(float(guess == true))
                    acc["hard_step_mass"].append(mass)
                    acc["hard_step_wrong"].append(float(guess == task.wrong_step(before_of[true])))
                elif kind == "check":
                    acc["check_acc"].append(float(guess == true))
                else:
                    acc["hard_check_acc"].append(float(guess == true))
                    acc["hard_check_mass"].append(mass)
                    acc["hard_check_copy"].append(float(guess == completion[idx - 2]))
            if fmt == "STEP":
                eq = completion.index("=")
                row_top = top[row, off : off + eq + 1].tolist()
                ok = row_top[-1] == v["="] and v["="] not in row_top[:-1]
                acc["stop_acc"].append(float(ok))
    if was_training:
        model.train()
    out = {k: float(np.mean(x)) if x else float("nan") for k, x in acc.items()}
    out["n_hard_checks"] = float(len(acc["hard_check_acc"]))
    if task.n_hard:
        out["n_hard_steps"] = float(len(acc["hard_step_acc"]))
    else:  # the first organism's record is unchanged
        for key in ("hard_step_acc", "hard_step_mass", "hard_step_wrong"):
            del out[key]
    return out


def pretrain(
    task: PermutationChain,
    model_spec: ModelSpec,
    spec: PretrainSpec,
    progress: bool = True,
    on_eval: Callable[[int, dict[str, float]], None] | None = None,
):
    """Train a base model from scratch; returns ``(model, tokenizer, history)``.

    ``history`` holds per-step losses, the wall time and a competence record every
    ``eval_every`` steps (teacher-forced, see :func:`competence`).
    """
    if spec.steps < 1 or spec.batch_size < 1:
        raise ValueError("steps and batch_size must be >= 1")
    model = build_model(model_spec, seed=spec.seed)
    tokenizer = build_tokenizer()
    model.train()
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": spec.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=spec.lr,
        betas=(0.9, 0.98),
    )
    rng = np.random.default_rng(spec.seed)
    history: dict[str, Any] = {"loss": [], "evals": []}
    t0 = time.perf_counter()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=spec.steps, desc="pretrain", leave=False)
    for step in range(spec.steps):
        prompts, completions = [], []
        for _ in range(spec.batch_size):
            p, _, c, _ = corpus_trace(task, rng, spec.corpus)
            prompts.append(task.prompt(p))
            completions.append(c)
        batch = encode(prompts, completions)
        for g in opt.param_groups:
            g["lr"] = _lr_at(step, spec)
        loss = model(**batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), spec.grad_clip)
        opt.step()
        history["loss"].append(float(loss.detach()))
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{history['loss'][-1]:.3f}")
        last = step + 1 == spec.steps
        if spec.eval_every and ((step + 1) % spec.eval_every == 0 or last):
            comp = competence(model, task, spec.corpus, n_traces=256)
            comp["step"] = step + 1
            comp["seconds"] = time.perf_counter() - t0
            history["evals"].append(comp)
            if on_eval is not None:
                on_eval(step + 1, comp)
    if bar is not None:
        bar.close()
    history["seconds"] = time.perf_counter() - t0
    model.eval()
    return model, tokenizer, history
