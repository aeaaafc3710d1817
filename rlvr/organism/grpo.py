"""RL with verifiable rewards on the organism: TRL's ``GRPOTrainer`` on the task's verifier.

Every reward call (one per generation batch: ``prompts_per_step x group`` rollouts) appends
one JSON line to the log: ``{"step", "formats": {name: count}, "reward": mean, ...}`` where
``step`` counts the generation batches sampled before this one (0 = the base model;
with ``steps_per_generation = 1`` it is the number of updates made). ``reward`` is the
reward trained on and ``verified`` the task's verifier, which differ for spurious rewards.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..generation.sampling_params import SamplingParams
from .rewards import REWARDS, make_reward
from .task import FORMATS, OTHER, PermutationChain, Problem
from .trl_runs import cpu_trainer_args, load_base, save_trained, snapshot_callback

__all__ = ["RLSpec", "grpo_train"]


@dataclass(frozen=True)
class RLSpec:
    """GRPO settings (TRL names in brackets).

    ``group`` rollouts per prompt [num_generations], ``prompts_per_step`` prompts per
    update, learning rate ``lr`` (constant), KL weight ``beta`` (0 = no reference model),
    sampling ``temperature``; the completion budget comes from the task
    (``max_completion_length = task.budget + 1`` for the closing ``<eos>``).

    ``reward`` names the reward trained on (:data:`rlvr.organism.rewards.REWARDS`).
    ``steps_per_generation`` > 1 splits each generation batch into that many mini-batches,
    one update each [steps_per_generation]: every update after the first is off-policy, which
    is where the clipped ratio acts. ``clip = false`` removes the clipping (the ratio is left
    unbounded: TRL's ``epsilon`` set to 1e9), the ablation of Shao et al.
    """

    steps: int = 200
    prompts_per_step: int = 8
    group: int = 16
    lr: float = 1e-4
    beta: float = 0.0
    temperature: float = 1.0
    epsilon: float = 0.2
    loss_type: str = "dapo"
    scale_rewards: str = "group"
    max_grad_norm: float = 1.0
    warmup_steps: int = 0
    reward: str = "verify"
    steps_per_generation: int = 1
    clip: bool = True

    def __post_init__(self) -> None:
        if self.group < 2:
            raise ValueError(f"group={self.group}: GRPO needs >= 2 rollouts per prompt")
        if self.steps < 1 or self.prompts_per_step < 1:
            raise ValueError("steps and prompts_per_step must be >= 1")
        if not 0 < self.lr <= 1e-3:
            raise ValueError(
                f"lr={self.lr} must lie in (0, 1e-3]; 1e-4 or less keeps the base's skills"
            )
        if self.reward not in REWARDS:
            raise ValueError(f"reward={self.reward!r}: use one of {', '.join(REWARDS)}")
        if self.steps_per_generation < 1:
            raise ValueError(f"steps_per_generation={self.steps_per_generation} must be >= 1")
        if (self.prompts_per_step * self.group) % self.steps_per_generation:
            raise ValueError(
                f"steps_per_generation={self.steps_per_generation} must divide the generation "
                f"batch (prompts_per_step x group = {self.prompts_per_step * self.group})"
            )

    def rollouts(self, task: PermutationChain, seed: int) -> SamplingParams:
        """How each prompt's rollouts are drawn, as the loop's settings record: ``group``
        samples at ``temperature``, no top-p truncation, up to the task's budget plus the
        closing ``<eos>``. GRPO's config is filled from it, and the run records it."""
        return SamplingParams(
            n=self.group,
            temperature=self.temperature,
            top_p=1.0,
            max_new_tokens=task.budget + 1,
            seed=seed,
        )


class _RewardLog:
    """The verifier as a TRL reward function that also logs format shares per step."""

    __name__ = "verify"

    def __init__(
        self,
        task: PermutationChain,
        log_path: Path,
        progress: Any = None,
        reward: str = "verify",
        seed: int = 0,
    ) -> None:
        self.task = task
        self.reward = make_reward(reward, task, seed)
        self.log_path = log_path
        self.calls = 0
        self.progress = progress
        self.t0 = time.perf_counter()
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_text("")

    def __call__(
        self,
        prompts: Sequence[str],
        completions: Sequence[str],
        start: Sequence[str],
        hops: Sequence[int],
        **_: Any,
    ) -> list[float]:
        problems = [Problem(s, int(h)) for s, h in zip(start, hops)]
        verified = [self.task.verify(p, c) for p, c in zip(problems, completions)]
        rewards = [self.reward(p, c) for p, c in zip(problems, completions)]
        fmts = [self.task.format_of(c) for c in completions]
        counts = Counter(fmts)
        ok = Counter(f for f, r in zip(fmts, verified) if r > 0)
        names = (*FORMATS, OTHER)
        stats = [self.task.trace_stats(p, c) for p, c in zip(problems, completions)]
        steps = sum(s.steps for s in stats)
        checks = sum(s.checks for s in stats)
        record = {
            "step": self.calls,
            "formats": {f: int(counts.get(f, 0)) for f in names},
            "reward": sum(rewards) / len(rewards),
            "verified": sum(verified) / len(verified),
            "reward_by_format": {
                f: (ok.get(f, 0) / counts[f]) if counts.get(f) else None for f in names
            },
            "step_acc": (sum(s.steps_right for s in stats) / steps) if steps else None,
            "checks_per_step": (checks / steps) if steps else None,
            # answer right but the effective chain wrong (what a lenient verifier would pay)
            "answer_right_chain_wrong": sum(
                self.task.verify(p, c, strict=False) == 1.0 and not s.chain_right
                for s, p, c in zip(stats, problems, completions)
            ),
            "finished": sum(s.finished for s in stats) / len(stats),
            "mean_length": sum(s.length for s in stats) / len(stats),
            "seconds": round(time.perf_counter() - self.t0, 2),
        }
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        self.calls += 1
        if self.progress is not None:
            self.progress.update(1)
            self.progress.set_postfix(reward=f"{record['reward']:.3f}")
        return rewards


def grpo_train(
    task: PermutationChain,
    base_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    problems: Sequence[Problem],
    spec: RLSpec,
    seed: int,
    log_path: str | os.PathLike[str],
    progress: bool = True,
    snapshots: Sequence[int] = (),
    snapshot_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Run GRPO from the checkpoint in ``base_dir`` on ``problems``; save to ``out_dir``.

    Returns ``{"seconds", "steps", "seed", "rollouts"}`` (``rollouts``: how the rollouts
    were drawn, :meth:`RLSpec.rollouts` as a dict). Uses one CPU process (``use_cpu=True``,
    fp32, no gradient checkpointing). ``snapshots`` lists optimiser steps after which the
    weights are also saved, to ``snapshot_dir/step-<N>`` (for update measurements over
    training); a repeated problem list (one problem many times) is one-example RL.
    """
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    if not problems:
        raise ValueError("no training problems: pass the train split")
    model, tokenizer = load_base(base_dir)
    data = Dataset.from_list(
        [{"prompt": task.prompt(p), "start": p.start, "hops": p.hops} for p in problems]
    )
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=spec.steps, desc=f"grpo seed {seed}", leave=False)
    reward = _RewardLog(task, Path(log_path), bar, reward=spec.reward, seed=seed)
    callbacks = [snapshot_callback(snapshots, snapshot_dir)] if snapshots else []
    rollouts = spec.rollouts(task, seed)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        config = GRPOConfig(
            **cpu_trainer_args(
                tmp, seed=seed, steps=spec.steps, lr=spec.lr, max_grad_norm=spec.max_grad_norm
            ),
            gradient_checkpointing=False,
            per_device_train_batch_size=spec.prompts_per_step
            * spec.group
            // spec.steps_per_generation,
            steps_per_generation=spec.steps_per_generation,
            num_generations=rollouts.n,
            max_completion_length=rollouts.max_new_tokens,
            temperature=rollouts.temperature,
            top_p=rollouts.top_p,
            top_k=0,
            warmup_steps=spec.warmup_steps,
            beta=spec.beta,
            epsilon=spec.epsilon if spec.clip else 1e9,
            loss_type=spec.loss_type,
            scale_rewards=spec.scale_rewards,
        )
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=[reward],
            args=config,
            train_dataset=data,
            processing_class=tokenizer,
            callbacks=callbacks,
        )
        trainer.train()
        seconds = time.perf_counter() - t0
        model = trainer.model
    if bar is not None:
        bar.close()
    save_trained(model, tokenizer, out_dir)
    return {"seconds": seconds, "steps": spec.steps, "seed": seed, "rollouts": rollouts.to_dict()}
