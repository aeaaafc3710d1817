"""Reasoning traces of real models: the think block, sentences, and their strategy labels.

The label set is the sentence taxonomy of Venhoff, Arcuschin et al. (2025, "Understanding
reasoning in thinking language models via steering vectors", arXiv:2506.18167):
``initializing``, ``deduction``, ``adding-knowledge``, ``example-testing``,
``uncertainty-estimation``, ``backtracking`` (``CATEGORIES``), plus ``other``, which
labellers use only when asked to (``LABELS``). Their semantics are those of the paper's
reference annotation (see :mod:`rlvr.text.labelling.rules` and ``data/reasoning/README.md``).

The pipeline is: :func:`think_block` finds the reasoning part of a completion,
:func:`split_sentences` cuts it into sentences with exact character offsets, and a
*labeller* (any ``Callable[[list[str]], list[str]]`` taking the sentences of one trace in
order) assigns one label per sentence. :class:`RuleLabeller` (offline, a heuristic) is the
default; :mod:`rlvr.text.labelling` also has a trained labeller, an LLM labeller, the
annotated-trace format and agreement measures (``python bench/labeller.py`` measures the
rule labeller on held-out annotated traces). Nothing here calls a network service.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence

from .labelling.labels import CATEGORIES, LABELS, LabeledSentence, Labeller, Sentence
from .labelling.rules import DEFAULT_RULES, RuleLabeller

__all__ = [
    "CATEGORIES",
    "LABELS",
    "DEFAULT_RULES",
    "Labeller",
    "LabeledSentence",
    "RuleLabeller",
    "Sentence",
    "at_sentence_boundary",
    "label_trace",
    "segment_start_label",
    "split_sentences",
    "think_block",
]


# ------------------------------------------------------------------------- think block

_OPEN_TAG = "<think>"
_CLOSE_TAG = "</think>"


def think_block(text: str) -> tuple[int, int]:
    """Character range ``(start, end)`` of the reasoning part of a completion.

    * ``<think>...</think>``: the range between the tags;
    * ``<think>`` without a closing tag (a truncated generation): from the tag to the end;
    * ``...</think>`` without an opening tag (DeepSeek-R1 distills put ``<think>`` in the
      chat template, so completions start inside the block): from 0 to the closing tag;
    * no tags: the whole text.
    """
    if not isinstance(text, str):
        raise TypeError(f"think_block expects a str, got {type(text).__name__}; pass the text")
    open_at = text.find(_OPEN_TAG)
    if open_at != -1:
        start = open_at + len(_OPEN_TAG)
        close_at = text.find(_CLOSE_TAG, start)
        return start, (len(text) if close_at == -1 else close_at)
    close_at = text.find(_CLOSE_TAG)
    if close_at != -1:
        return 0, close_at
    return 0, len(text)


# ------------------------------------------------------------------- sentence splitting

# Math whose inside never holds a sentence boundary. Inline $...$ follows the pandoc rule
# (no space just inside either dollar, closing dollar not followed by a digit) so that
# currency ("$5 and $10") is not taken for math.
_MATH_RE = re.compile(
    r"\$\$.+?\$\$"
    r"|\\\[.+?\\\]"
    r"|\\\(.+?\\\)"
    r"|\\begin\{([A-Za-z*]+)\}.+?\\end\{\1\}"
    r"|(?<![\\$])\$(?=[^\s$])(?:[^$\n]|\n(?!\s*\n))*?(?<=[^\s\\])\$(?!\d)",
    re.DOTALL,
)
_END_RE = re.compile(r"(?:[.!?]+|\u2026)[\"')\]*]*(?=\s|$)")
_NEXT_START_RE = re.compile(r"[A-Z0-9\"'(\[$\\*\u201c]")
_LIST_MARKER_RE = re.compile(
    r"(?:[-*\u2022+]|\d{1,3}[.)]|\(\d{1,3}\)|\(?[a-z]\)|#{1,6}|>)[ \t]+(?=\S)"
)
_MARKER_ONLY_RE = re.compile(r"[-*\u2022+]|\d{1,3}[.)]|\(\d{1,3}\)|\(?[a-z]\)|#{1,6}|>")
# Words whose period does not end a sentence ("No." and "etc." do end one in reasoning text).
_ABBREVIATIONS = frozenset(
    {"e.g", "i.e", "vs", "cf", "approx", "dr", "mr", "mrs", "ms", "prof", "fig", "eq", "eqs"}
    | {"resp", "al", "a.k.a", "w.r.t", "s.t", "viz"}
)


def _check_range(text: str, start: int, end: int | None) -> tuple[int, int]:
    if not isinstance(text, str):
        raise TypeError(f"expected the text as a str, got {type(text).__name__}")
    if end is None:
        end = len(text)
    if not (isinstance(start, int) and isinstance(end, int)):
        raise TypeError("start and end must be ints (character offsets into the text)")
    if not 0 <= start <= end <= len(text):
        raise ValueError(
            f"need 0 <= start <= end <= len(text) = {len(text)}, got start={start}, end={end}; "
            "pass offsets inside the text (e.g. from think_block)"
        )
    return start, end


class _Protected:
    """Sorted, disjoint character intervals (math) in which no boundary may fall."""

    def __init__(self, text: str, start: int, end: int) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        for m in _MATH_RE.finditer(text, start, end):
            self.starts.append(m.start())
            self.ends.append(m.end())

    def contains(self, i: int) -> bool:
        """Whether position ``i`` lies strictly inside a protected interval."""
        k = bisect.bisect_right(self.starts, i) - 1
        return k >= 0 and self.starts[k] < i < self.ends[k]


def _is_abbreviation(text: str, dot: int, line_start: int) -> bool:
    """Whether the period at ``text[dot]`` ends an abbreviation such as "e.g." or "Dr."."""
    m = re.search(r"[\w.]+$", text[line_start:dot])
    if not m:
        return False
    word = m.group(0).lower()
    return word in _ABBREVIATIONS or word.rstrip(".") in _ABBREVIATIONS


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _boundaries_in_line(text: str, start: int, end: int, protected: _Protected) -> list[int]:
    """Offsets inside ``text[start:end]`` (one line) where a new sentence starts."""
    cuts: list[int] = []
    for m in _END_RE.finditer(text, start, end):
        if protected.contains(m.start()):
            continue
        nxt = m.end()
        while nxt < end and text[nxt].isspace():
            nxt += 1
        if nxt >= end:
            continue
        if not _NEXT_START_RE.match(text, nxt):
            continue
        punct = text[m.start() : m.end()]
        if punct.startswith(".") and not punct.startswith("..."):
            if _is_abbreviation(text, m.start(), start):
                continue
        cuts.append(nxt)
    return cuts


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[Sentence]:
    """Split ``text[start:end]`` into sentences with exact offsets into ``text``.

    Every returned sentence satisfies ``text[s.start:s.end] == s.text`` and has no leading
    or trailing whitespace. Rules: a line break always ends a sentence (except inside
    math); within a line, ``.``, ``!``, ``?`` or an ellipsis followed by whitespace and an
    upper-case letter, digit, quote, bracket, ``$`` or backslash ends one. Periods inside
    numbers (3.14) or after abbreviations ("e.g.", "i.e.", "Dr.", "vs.") do not split, nor
    does anything inside ``$...$``, ``$$...$$``, ``\\(...\\)``, ``\\[...\\]`` or a
    ``\\begin{..}...\\end{..}`` environment. A list marker at the start of a line ("1. ",
    "- ", "(a) ", "### ") is left out of the sentence that follows it. Pieces with no
    letter or digit (a lone "---" or "**") are dropped.
    """
    start, end = _check_range(text, start, end)
    protected = _Protected(text, start, end)
    sentences: list[Sentence] = []

    line_starts = [start]
    for i in range(start, end):
        if text[i] == "\n" and not protected.contains(i):
            line_starts.append(i + 1)
    line_ends = [s - 1 for s in line_starts[1:]] + [end]

    for line_start, line_end in zip(line_starts, line_ends):
        a, b = _trim(text, line_start, line_end)
        if a >= b:
            continue
        marker = _LIST_MARKER_RE.match(text, a, b)
        if marker and not protected.contains(a + 1):
            a = marker.end()
        cuts = [a, *_boundaries_in_line(text, a, b, protected), b]
        for s, e in zip(cuts, cuts[1:]):
            s, e = _trim(text, s, e)
            if s < e and any(ch.isalnum() for ch in text[s:e]):
                sentences.append(Sentence(s, e, text[s:e]))
    return sentences


# --------------------------------------------------------------------------- labelling


_DEFAULT_LABELLER = RuleLabeller()


def _apply_labeller(labeller: Labeller, sentences: list[str], labels: Sequence[str]) -> list[str]:
    if not callable(labeller):
        raise TypeError(
            f"labeller must be callable (list[str] -> list[str]), got {type(labeller).__name__}"
        )
    out = labeller(list(sentences))
    if isinstance(out, str) or not isinstance(out, Sequence):
        raise TypeError(
            f"the labeller returned {type(out).__name__}; it must return a list with one "
            "label str per input sentence"
        )
    out = list(out)
    if len(out) != len(sentences):
        raise ValueError(
            f"the labeller returned {len(out)} labels for {len(sentences)} sentences; "
            "it must return exactly one label per sentence, in order"
        )
    allowed = set(labels)
    for k, label in enumerate(out):
        if label not in allowed:
            raise ValueError(
                f"the labeller returned unknown label {label!r} for sentence {k} "
                f"({sentences[k][:60]!r}); labels must be one of {list(labels)} "
                "(map your labeller's output onto them, or pass labels=...)"
            )
    return out


def label_trace(
    text: str, labeller: Labeller | None = None, *, labels: Sequence[str] = LABELS
) -> list[LabeledSentence]:
    """Split the reasoning of ``text`` into sentences and label each one.

    The reasoning range comes from :func:`think_block`, the sentences from
    :func:`split_sentences`; offsets refer to ``text``. ``labeller`` is any callable mapping
    a list of sentences to a list of labels (default: :class:`RuleLabeller`). A labeller
    that returns the wrong number of labels, or a label outside ``labels``, raises
    ValueError.
    """
    start, end = think_block(text)
    sentences = split_sentences(text, start, end)
    if not sentences:
        return []
    found = _apply_labeller(labeller or _DEFAULT_LABELLER, [s.text for s in sentences], labels)
    return [LabeledSentence(s.start, s.end, s.text, lab) for s, lab in zip(sentences, found)]


_TAIL_CHARS = 400
_OPEN_MATH_RE = re.compile(r"\\\(|\\\[|\\begin\{")
_CLOSE_MATH_RE = re.compile(r"\\\)|\\\]|\\end\{")


def _inside_math(tail: str) -> bool:
    """Approximate: whether the end of ``tail`` lies inside unfinished math."""
    opens = [m.end() for m in _OPEN_MATH_RE.finditer(tail)]
    closes = [m.end() for m in _CLOSE_MATH_RE.finditer(tail)]
    if opens and (not closes or opens[-1] > closes[-1]):
        return True
    paragraph = tail.rsplit("\n\n", 1)[-1]
    stripped = paragraph.replace("\\$", "")
    if stripped.count("$$") % 2 == 1:
        return True
    return _protected_dollar_open(stripped.replace("$$", ""))


def _protected_dollar_open(paragraph: str) -> bool:
    """Whether a ``$`` math span is open at the end of the paragraph (pandoc rules)."""
    open_ = False
    for i, ch in enumerate(paragraph):
        if ch != "$":
            continue
        if not open_:
            nxt = paragraph[i + 1 : i + 2]
            open_ = bool(nxt) and not nxt.isspace()
        else:
            prev = paragraph[i - 1 : i]
            nxt = paragraph[i + 1 : i + 2]
            if prev and not prev.isspace() and not nxt.isdigit():
                open_ = False
    return open_


def _sentence_begins(prefix: str, next_text: str) -> tuple[bool, bool]:
    """Whether ``next_text`` begins a sentence after ``prefix``, and whether that sentence
    would be the first of the think block (nothing but whitespace before it)."""
    if not isinstance(prefix, str) or not isinstance(next_text, str):
        raise TypeError(
            "segment_start_label expects prefix and next_text as str (decode token ids first)"
        )
    word = next_text.lstrip()
    if not word:
        return False, False
    tail = prefix[-_TAIL_CHARS:]
    for tag in (_OPEN_TAG, _CLOSE_TAG):
        at = tail.rfind(tag)
        if at != -1:
            tail = tail[at + len(tag) :]
    first = len(prefix) <= _TAIL_CHARS and not any(ch.isalnum() for ch in tail)
    if _inside_math(tail):
        return False, False
    before = tail + next_text[: len(next_text) - len(word)]
    if before and not before[-1].isspace():
        return False, False
    body = before.rstrip()
    if body:
        last_line = body.rsplit("\n", 1)[-1]
        line_break = "\n" in before[len(body) :]
        marker = _MARKER_ONLY_RE.fullmatch(last_line.strip())
        if not line_break and marker is None:
            combined = before + word[:1]
            cut = _boundaries_in_line(combined, 0, len(combined), _Protected(combined, 0, 0))
            if not cut or cut[-1] != len(before):
                return False, False
    return True, first


def at_sentence_boundary(prefix: str) -> bool:
    """Whether some next token (one that does not start with a line break) could begin a
    sentence after ``prefix``: the rules of :func:`segment_start_label` for a token that
    starts with an upper-case letter, with or without a leading space."""
    return any(_sentence_begins(prefix, probe)[0] for probe in ("A", " A"))


def segment_start_label(
    prefix: str,
    next_text: str,
    labeller: Labeller | None = None,
    *,
    labels: Sequence[str] = LABELS,
) -> str | None:
    """Label of the sentence that ``next_text`` would begin after ``prefix``, else None.

    Meant to be called once per decoding step with the text generated so far and the text
    of a candidate next token (``tokenizer.decode([token_id])``), so it only looks at the
    last few hundred characters of ``prefix``. The token begins a sentence when its first
    non-space character starts the text or the think block, follows a line break (or a list
    marker at the start of a line), or follows sentence-ending punctuation and whitespace
    under the rules of :func:`split_sentences`; a token that continues a word, or lies
    inside unfinished math, begins nothing. Whitespace-only tokens begin nothing either
    (the word after them does).

    Only the token is known, not the rest of the sentence, so the label is the labeller's
    label for the token's own text. With a :class:`RuleLabeller` (the default) the first
    sentence of the think block is ``initializing``; after it, "Wait" and "Alternatively"
    begin backtracking, "Recall" adding-knowledge, "Check" example-testing, and a word
    with no cue (So, Let, Maybe) deduction. Routers that need more context can call this
    with a longer ``next_text``.
    """
    begins, first = _sentence_begins(prefix, next_text)
    if not begins:
        return None
    word = next_text.strip()
    labeller = labeller or _DEFAULT_LABELLER
    if isinstance(labeller, RuleLabeller):
        return _apply_labeller(
            lambda batch: [labeller.label(batch[0], 0 if first else None)], [word], labels
        )[0]
    return _apply_labeller(labeller, [word], labels)[0]
