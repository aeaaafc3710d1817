"""Number formats shared by the report's text and plots."""

from __future__ import annotations

__all__ = ["pct"]


def pct(x: float | None) -> str:
    """A share as a percentage with one decimal; ``n/a`` for None or NaN."""
    return "n/a" if x is None or x != x else f"{100 * x:.1f}%"
