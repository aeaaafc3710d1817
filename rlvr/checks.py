"""Argument checks shared across the packages (no torch, no numpy)."""

from __future__ import annotations

__all__ = ["probability"]


def probability(value: object, name: str, meaning: str = "a probability") -> float:
    """``value`` as a float in [0, 1], or a clear refusal naming ``name``.

    Python, numpy and 0-d torch numbers are accepted. A bool, a string or anything that is
    not a number raises TypeError; NaN and values outside [0, 1] raise ValueError. The
    message reads ``"{name}={value} must lie in [0, 1] ({meaning})"``.
    """
    if isinstance(value, bool | str | bytes) or not hasattr(value, "__float__"):
        raise TypeError(
            f"{name} must be a number in [0, 1] ({meaning}), got {type(value).__name__} {value!r}"
        )
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as err:  # e.g. an array of several numbers
        raise TypeError(f"{name} must be one number in [0, 1] ({meaning}), got {value!r}") from err
    if not 0.0 <= v <= 1.0:  # NaN fails every comparison
        raise ValueError(f"{name}={value!r} must lie in [0, 1] ({meaning})")
    return v
