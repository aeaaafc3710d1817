"""Incremental detokenising: the text of a growing token sequence, a token at a time.

Decoding a whole sequence after every new token costs time quadratic in its length. An
:class:`IncrementalText` decodes only a short window of the last tokens with and without
the new one and appends the difference; it decodes the whole sequence again only when a
multi-byte character straddles tokens (the window's text then ends in U+FFFD, or the longer
decode does not extend the shorter one). Text is decoded without special tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["IncrementalText", "plain_decoder"]

Decode = Callable[[Sequence[int]], str]


def plain_decoder(tokenizer: Any) -> Decode:
    """``ids -> text`` without special tokens: the fast tokenizer's own decoder when
    transformers' ``decode`` would add nothing to it (no clean-up of spaces), else
    ``tokenizer.decode``."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None and not getattr(tokenizer, "clean_up_tokenization_spaces", True):
        return lambda ids: backend.decode(list(ids), skip_special_tokens=True)
    return lambda ids: tokenizer.decode(list(ids), skip_special_tokens=True)


class IncrementalText:
    """Token ids and their decoded text, extended one token at a time.

    ``decode`` is an ``ids -> text`` function (e.g. :func:`plain_decoder`); ``ids`` the
    tokens so far (e.g. a prompt without padding). ``text`` is ``decode(ids)`` wherever a
    token's text depends on at most the ``WINDOW`` tokens before it (byte-level BPE,
    SentencePiece and character tokenizers).
    """

    __slots__ = ("_win_text", "decode", "ids", "text")

    WINDOW = 8  # tokens decoded before the new one

    def __init__(self, decode: Decode, ids: Sequence[int] = ()) -> None:
        self.decode = decode
        self.ids = list(ids)
        self.text = decode(self.ids)
        self._win_text: str | None = None

    def delta(self, tok: int) -> str | None:
        """The text ``tok`` would add after ``text``; None where a multi-byte character
        straddles tokens (only a whole decode can tell then)."""
        win = self.ids[-self.WINDOW :]
        if self._win_text is None:
            self._win_text = self.decode(win)
        a = self._win_text
        b = self.decode([*win, tok])
        if a.endswith("\ufffd") or not b.startswith(a):
            return None
        return b[len(a) :]

    def next_text(self, tok: int) -> str:
        """The text ``tok`` would add, or (where :meth:`delta` cannot tell) its own text."""
        d = self.delta(tok)
        return d if d is not None else self.decode([tok])

    def append(self, tok: int) -> str:
        """Append ``tok``; returns the updated ``text``."""
        d = self.delta(tok)
        self.ids.append(tok)
        self._win_text = None
        self.text = self.text + d if d is not None else self.decode(self.ids)
        return self.text
