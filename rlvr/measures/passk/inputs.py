"""Checks of what the pass@k functions are given: integer counts, sample counts, ks, seeds,
bootstrap sizes, CI levels and rates, each refused with what to pass instead."""

from __future__ import annotations

import numpy as np

from ...checks import probability

__all__ = [
    "as_int",
    "check_ci",
    "check_n_boot",
    "check_rate",
    "check_seed",
    "counts_and_n",
    "int_array",
    "ks_array",
]


def as_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    return int(value)


def check_seed(seed: object) -> int:
    seed = as_int(seed, "seed")
    if seed < 0:
        raise ValueError(f"seed={seed} is negative: pass a non-negative integer seed")
    return seed


def check_n_boot(n_boot: object) -> int:
    n_boot = as_int(n_boot, "n_boot")
    if n_boot < 1:
        raise ValueError(f"n_boot={n_boot} must be at least 1: pass e.g. n_boot=1000")
    return n_boot


def check_ci(ci: object) -> float:
    if isinstance(ci, bool) or not isinstance(ci, int | float | np.floating):
        raise TypeError(f"ci must be a float in (0, 1), got {type(ci).__name__} {ci!r}")
    if not 0.0 < float(ci) < 1.0:
        raise ValueError(f"ci={ci} must lie strictly between 0 and 1: pass e.g. ci=0.95")
    return float(ci)


def int_array(values: object, name: str) -> np.ndarray:
    """1-D integer array from a sequence of integer-valued numbers."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one entry per problem), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty: pass at least one problem")
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"{name} must hold integer counts, got dtype {arr.dtype}")
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ValueError(f"{name} must hold whole numbers: round or cast counts to int")
    arr = arr.astype(np.int64)
    if np.any(arr < 0):
        i = int(np.argmax(arr < 0))
        raise ValueError(f"{name}[{i}]={arr[i]} is negative: counts must be >= 0")
    return arr


def counts_and_n(counts: object, n: object, name: str = "counts") -> tuple[np.ndarray, np.ndarray]:
    c = int_array(counts, name)
    if isinstance(n, int | np.integer) and not isinstance(n, bool):
        n_arr = np.full(c.shape, int(n), dtype=np.int64)
    else:
        n_arr = int_array(n, "n")
        if n_arr.shape != c.shape:
            raise ValueError(
                f"n has {n_arr.size} entries but {name} has {c.size}: pass one sample count "
                "per problem or a single int"
            )
    if np.any(n_arr < 1):
        i = int(np.argmax(n_arr < 1))
        raise ValueError(f"n={n_arr[i]} for problem {i}: each problem needs at least one sample")
    if np.any(c > n_arr):
        i = int(np.argmax(c > n_arr))
        raise ValueError(
            f"{name}[{i}]={c[i]} exceeds n={n_arr[i]} samples: a problem cannot have more "
            "correct samples than samples drawn"
        )
    return c, n_arr


def ks_array(ks: object, n_min: int, *, increasing: bool) -> np.ndarray:
    if isinstance(ks, int | np.integer) and not isinstance(ks, bool):
        ks = [ks]
    k = int_array(ks, "ks")
    if np.any(k < 1):
        raise ValueError(f"ks contains {int(k[k < 1][0])}: every k must be >= 1")
    if np.any(k > n_min):
        bad = int(k[k > n_min][0])
        raise ValueError(
            f"k={bad} exceeds n={n_min} samples: draw at least k samples per problem or drop k"
        )
    if increasing and np.any(np.diff(k) <= 0):
        raise ValueError(f"ks={k.tolist()} must be strictly increasing: sort them and drop repeats")
    return k


def check_rate(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating):
        raise TypeError(f"{name} must be a PassKCurve or a float, got {type(value).__name__}")
    return probability(value, name, "a pass rate")
