"""Incremental detokenising: the text of a growing token sequence, a token at a time.

Decoding a whole sequence after every new token costs time quadratic in its length. An
:class:`IncrementalText` decodes only a short window of the last tokens with and without
the new one and appends the difference; it decodes the whole sequence again only when a
multi-byte character straddles tokens (the window's text then ends in U+FFFD, or the longer
decode does not extend the shorter one). Text is decoded without special tokens.

Where a tokenizer's text is a plain concatenation of one piece per token (a word-level
vocabulary with a ``Fuse`` decoder, e.g. a character tokenizer), :func:`plain_decoder`
carries that table (``pieces``) and a new token's text is a lookup: no decode at all.

:class:`StopTexts` keeps the completion texts of a batch's rows this way and says when a
stop string first appears in one: what the sampling loop does each step.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["IncrementalText", "PlainDecoder", "StopTexts", "plain_decoder", "token_pieces"]

Decode = Callable[[Sequence[int]], str]


def token_pieces(tokenizer: Any) -> list[str] | None:
    """Each token id's text, where decoding (without special tokens) is nothing but
    joining them: a fast tokenizer with a word-level vocabulary, a ``Fuse`` decoder and no
    clean-up of spaces (special tokens give ``""``). None for every other tokenizer."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or getattr(tokenizer, "clean_up_tokenization_spaces", True):
        return None
    try:
        spec = json.loads(backend.to_str())
    except Exception:  # noqa: BLE001 - a backend that cannot describe itself: no table
        return None
    decoder = spec.get("decoder") or {}
    if spec.get("model", {}).get("type") != "WordLevel" or decoder.get("type") != "Fuse":
        return None
    size = backend.get_vocab_size(with_added_tokens=True)
    pieces = [backend.decode([i], skip_special_tokens=True) for i in range(size)]
    # the table must give what the decoder gives (a cheap check on one sequence)
    ids = list(range(size))
    if "".join(pieces) != backend.decode(ids, skip_special_tokens=True):
        return None
    return pieces


class PlainDecoder:
    """``ids -> text`` without special tokens (see :func:`plain_decoder`); ``pieces`` is
    the per-token table of :func:`token_pieces` or None."""

    __slots__ = ("_decode", "pieces")

    def __init__(self, decode: Decode, pieces: list[str] | None = None) -> None:
        self._decode = decode
        self.pieces = pieces

    def __call__(self, ids: Sequence[int]) -> str:
        return self._decode(ids)


def plain_decoder(tokenizer: Any) -> PlainDecoder:
    """``ids -> text`` without special tokens: the fast tokenizer's own decoder when
    transformers' ``decode`` would add nothing to it (no clean-up of spaces), else
    ``tokenizer.decode``. Carries :func:`token_pieces` where the tokenizer has them."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None and not getattr(tokenizer, "clean_up_tokenization_spaces", True):
        return PlainDecoder(
            lambda ids: backend.decode(list(ids), skip_special_tokens=True),
            token_pieces(tokenizer),
        )
    return PlainDecoder(lambda ids: tokenizer.decode(list(ids), skip_special_tokens=True))


class IncrementalText:
    """Token ids and their decoded text, extended one token at a time.

    ``decode`` is an ``ids -> text`` function (e.g. :func:`plain_decoder`); ``ids`` the
    tokens so far (e.g. a prompt without padding). ``text`` is ``decode(ids)`` wherever a
    token's text depends on at most the ``WINDOW`` tokens before it (byte-level BPE,
    SentencePiece and character tokenizers). A decoder with ``pieces`` (a per-token table)
    is not called for tokens the table covers. ``kept`` is how many leading characters of
    ``text`` the last :meth:`append` left as they were.
    """

    __slots__ = ("_pieces", "_win_text", "decode", "ids", "kept", "text")

    WINDOW = 8  # tokens decoded before the new one

    def __init__(self, decode: Decode, ids: Sequence[int] = ()) -> None:
        self.decode = decode
        self._pieces: list[str] | None = getattr(decode, "pieces", None)
        self.ids = list(ids)
        self.text = decode(self.ids) if self.ids else ""
        self.kept = len(self.text)
        self._win_text: str | None = None

    def delta(self, tok: int) -> str | None:
        """The text ``tok`` would add after ``text``; None where a multi-byte character
        straddles tokens (only a whole decode can tell then)."""
        pieces = self._pieces
        if pieces is not None and 0 <= tok < len(pieces):
            return pieces[tok]
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
        old = self.text
        if d is not None:
            self.kept = len(old)
            self.text = old + d
        else:
            new = self.decode(self.ids)
            self.kept = len(os.path.commonprefix([old, new]))
            self.text = new
        return self.text


class StopTexts:
    """The completion text of each row of a batch, kept as tokens arrive, and whether a
    stop string has appeared in it.

    ``add(row, tok)`` appends one token to the row's text and returns True when a stop
    string now occurs in it: only the characters the token added (or changed) and the
    ``len(stop) - 1`` before them are searched, so each step costs a lookup or a short
    window decode per row (see :class:`IncrementalText`). ``texts[row]`` is the row's
    :class:`IncrementalText`.
    """

    def __init__(self, decode: Decode, n_rows: int, stops: Sequence[str]) -> None:
        if not stops or any(not s for s in stops):
            raise ValueError("StopTexts needs at least one stop string, none of them empty")
        self.stops = list(stops)
        self._reach = max(len(s) for s in self.stops) - 1
        self.texts = [IncrementalText(decode) for _ in range(n_rows)]

    def add(self, row: int, tok: int) -> bool:
        inc = self.texts[row]
        text = inc.append(tok)
        start = max(0, inc.kept - self._reach)
        return any(text.find(s, start) >= 0 for s in self.stops)
