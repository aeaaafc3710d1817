"""The text of each row while the hybrid decodes: what routers and the task's tests read.

Each row's prefix (prompt + completion so far, decoded without special tokens) is kept up
to date incrementally by :class:`rlvr.detokenize.IncrementalText`: a new token decodes
only a short window of the last tokens, and the whole row is decoded again only when a
multi-byte character straddles tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rlvr.detokenize import IncrementalText, plain_decoder

__all__ = ["RowTexts"]


class RowTexts:
    """Prefix text per row key, appended to as tokens are generated."""

    def __init__(self, tokenizer: Any) -> None:
        self._decode = plain_decoder(tokenizer)
        self.rows: dict[tuple[int, int], IncrementalText] = {}
        self._next: dict[tuple[tuple[int, int], int], str] = {}

    def start(self, keys: Sequence[tuple[int, int]], prompts: Sequence[Sequence[int]]) -> None:
        """New rows (one batch's prompts, padding removed)."""
        self.rows.clear()
        self._next.clear()
        for key, ids in zip(keys, prompts):
            self.rows[key] = IncrementalText(self._decode, ids)

    def append(self, key: tuple[int, int], tok: int) -> None:
        self.rows[key].append(tok)

    def new_step(self) -> None:
        self._next.clear()

    def prefix(self, key: tuple[int, int]) -> str:
        return self.rows[key].text

    def next_text(self, key: tuple[int, int], tok: int) -> str:
        """The text ``tok`` would add after the row's prefix (cached within a step)."""
        k = (key, tok)
        got = self._next.get(k)
        if got is None:
            got = self._next[k] = self.rows[key].next_text(tok)
        return got
