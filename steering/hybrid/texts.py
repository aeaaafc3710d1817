"""The text of each row while the hybrid decodes: what routers and the task's tests read.

Each row's prefix (prompt + completion so far, decoded without special tokens) is kept up
to date incrementally by :class:`rlvr.generation.detokenize.IncrementalText`: a new token decodes
only a short window of the last tokens, and the whole row is decoded again only when a
multi-byte character straddles tokens. Where the tokenizer's text is one piece per token
(:func:`rlvr.generation.detokenize.token_pieces`, e.g. the organism's characters), the text a token
would add is a table lookup and nothing is decoded at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rlvr.generation.detokenize import IncrementalText, plain_decoder

__all__ = ["RowTexts"]


class RowTexts:
    """Prefix text per row key, appended to as tokens are generated."""

    def __init__(self, tokenizer: Any) -> None:
        self._decode = plain_decoder(tokenizer)
        self._pieces = self._decode.pieces
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
        if self._next:
            self._next.clear()

    def prefix(self, key: tuple[int, int]) -> str:
        return self.rows[key].text

    def next_text(self, key: tuple[int, int], tok: int) -> str:
        """The text ``tok`` would add after the row's prefix (cached within a step)."""
        pieces = self._pieces
        if pieces is not None and 0 <= tok < len(pieces):
            return pieces[tok]
        k = (key, tok)
        got = self._next.get(k)
        if got is None:
            got = self._next[k] = self.rows[key].next_text(tok)
        return got

    def next_texts(self, key: tuple[int, int], toks: Sequence[int]) -> list[str]:
        """:meth:`next_text` of each of ``toks``."""
        pieces = self._pieces
        if pieces is not None and toks and min(toks) >= 0 and max(toks) < len(pieces):
            return [pieces[t] for t in toks]
        return [self.next_text(key, t) for t in toks]
