"""The text of each row while the hybrid decodes: what routers and the task's tests read.

Each row's prefix (prompt + completion so far, decoded without special tokens) is kept up
to date incrementally: a new token decodes only a short window of the last tokens, and
the whole row is decoded again only when a multi-byte character straddles tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["RowTexts"]


class _Row:
    __slots__ = ("ids", "text", "win_text")

    def __init__(self, ids: list[int], text: str) -> None:
        self.ids, self.text, self.win_text = ids, text, None


class RowTexts:
    """Prefix text per row key, appended to as tokens are generated."""

    WINDOW = 8

    def __init__(self, tokenizer: Any) -> None:
        self.tok = tokenizer
        self.rows: dict[tuple[int, int], _Row] = {}
        self._next: dict[tuple[tuple[int, int], int], str] = {}
        # the fast tokenizer's own decoder, when transformers' decode adds nothing to it
        backend = getattr(tokenizer, "backend_tokenizer", None)
        plain = backend is not None and not getattr(tokenizer, "clean_up_tokenization_spaces", True)
        self._fast = backend.decode if plain else None

    def _decode(self, ids: Sequence[int]) -> str:
        if self._fast is not None:
            return self._fast(list(ids), skip_special_tokens=True)
        return self.tok.decode(list(ids), skip_special_tokens=True)

    def start(self, keys: Sequence[tuple[int, int]], prompts: Sequence[Sequence[int]]) -> None:
        """New rows (one batch's prompts, padding removed)."""
        self.rows.clear()
        self._next.clear()
        for key, ids in zip(keys, prompts):
            self.rows[key] = _Row(list(ids), self._decode(ids))

    def _delta(self, row: _Row, tok: int) -> str | None:
        win = row.ids[-self.WINDOW :]
        if row.win_text is None:
            row.win_text = self._decode(win)
        a = row.win_text
        b = self._decode([*win, tok])
        if a.endswith("\ufffd") or not b.startswith(a):
            return None  # a multi-byte character split across tokens
        return b[len(a) :]

    def append(self, key: tuple[int, int], tok: int) -> None:
        row = self.rows[key]
        delta = self._delta(row, tok)
        row.ids.append(tok)
        row.win_text = None
        row.text = row.text + delta if delta is not None else self._decode(row.ids)

    def new_step(self) -> None:
        self._next.clear()

    def prefix(self, key: tuple[int, int]) -> str:
        return self.rows[key].text

    def next_text(self, key: tuple[int, int], tok: int) -> str:
        """The text ``tok`` would add after the row's prefix (cached within a step)."""
        k = (key, tok)
        got = self._next.get(k)
        if got is None:
            delta = self._delta(self.rows[key], tok)
            got = delta if delta is not None else self._decode([tok])
            self._next[k] = got
        return got
