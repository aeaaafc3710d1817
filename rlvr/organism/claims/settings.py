"""The claims' words and measurement settings (no torch: the config loader reads them)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CLAIMS", "KINDS", "PROBLEM_SETS", "VERDICTS", "ClaimSettings"]

CLAIMS = ("one_example", "spurious", "over_hard", "distillation", "sparsity")
KINDS = ("grpo", "sft", "pretrain")  # how a claims run trains
PROBLEM_SETS = ("train", "one", "over_hard")  # what a GRPO run of the claims trains on
VERDICTS = ("reproduced", "not reproduced", "inconclusive")


@dataclass(frozen=True)
class ClaimSettings:
    """Sampling and statistics of a claim measurement.

    ``n`` samples per problem (``ks`` must not exceed it), ``n_problems`` main-class test
    problems (per group where a claim splits them), ``min_effect`` the smallest change
    that counts (pass@1, or updated share for sparsity), ``margin`` how far below full-data
    RL the one-example run may stay and still count as "close".
    """

    n: int = 64
    n_problems: int = 64
    ks: tuple[int, ...] = (1, 4, 16, 64)
    n_boot: int = 1000
    seed: int = 0
    min_effect: float = 0.02
    margin: float = 0.1
    batch_size: int = 1024

    def __post_init__(self) -> None:
        object.__setattr__(self, "ks", tuple(int(k) for k in self.ks))
        if self.n < 1 or self.n_problems < 1:
            raise ValueError(f"n={self.n} and n_problems={self.n_problems} must be >= 1")
        if not self.ks or max(self.ks) > self.n or min(self.ks) < 1:
            raise ValueError(f"ks={list(self.ks)} must lie in [1, n={self.n}]: raise n or drop ks")
        if list(self.ks) != sorted(set(self.ks)):
            raise ValueError(f"ks={list(self.ks)} must be strictly increasing")
        if self.n_boot < 100:
            raise ValueError(f"n_boot={self.n_boot} is too few for a 95% CI: use >= 100")
        if not 0 < self.min_effect < 1:
            raise ValueError(f"min_effect={self.min_effect} must lie in (0, 1)")
        if not 0 <= self.margin < 1:
            raise ValueError(f"margin={self.margin} must lie in [0, 1)")
        if self.batch_size < 1:
            raise ValueError(f"batch_size={self.batch_size} must be >= 1")
