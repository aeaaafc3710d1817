"""Reasoning-strategy labels for the text of real reasoning models.

The label set is the sentence taxonomy of Venhoff, Arcuschin et al. (2025, "Understanding
reasoning in thinking language models via steering vectors", arXiv:2506.18167):

* ``initializing``: restating the task and setting out a first plan;
* ``deduction``: deriving a consequence of the current approach (computations, "So ...");
* ``adding-knowledge``: bringing in facts, definitions or formulas from outside the problem;
* ``example-testing``: checking a claim on a concrete case, substituting, verifying;
* ``uncertainty-estimation``: stating (un)certainty or hedging about the current step;
* ``backtracking``: noticing a problem and abandoning or revising the current approach;
* ``other``: fillers and anything that fits none of the above.

The pipeline is: :func:`think_block` finds the reasoning part of a completion,
:func:`split_sentences` cuts it into sentences with exact character offsets, and a
*labeller* (any ``Callable[[list[str]], list[str]]``) assigns one label per sentence.
:class:`RuleLabeller` is the built-in offline labeller. It is a HEURISTIC: an ordered list
of regular expressions over a sentence's wording, in which the first match wins. It catches
the surface cues that reasoning models use ("Wait", "Alternatively", "Let me verify",
"Recall that", "So") and misses strategies expressed without them; measure it on your own
traces (``python bench/labeller.py`` reports it on ``data/reasoning_sentences.jsonl``) and
swap in a stronger labeller (an LLM client, an SAE-cluster labeller) when that matters.
Nothing here calls a network service.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "LABELS",
    "DEFAULT_RULES",
    "Labeller",
    "LabeledSentence",
    "RuleLabeller",
    "Sentence",
    "label_trace",
    "segment_start_label",
    "split_sentences",
    "think_block",
]

LABELS: tuple[str, ...] = (
    "initializing",
    "deduction",
    "adding-knowledge",
    "example-testing",
    "uncertainty-estimation",
    "backtracking",
    "other",
)

Labeller = Callable[[list[str]], list[str]]
"""A batch labeller: takes a list of sentences and returns one label per sentence."""


@dataclass(frozen=True)
class Sentence:
    """A sentence of a larger text: ``text == source[start:end]``."""

    start: int
    end: int
    text: str


@dataclass(frozen=True)
class LabeledSentence:
    """A sentence with its strategy label; ``text == source[start:end]``."""

    start: int
    end: int
    text: str
    label: str


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


# ----------------------------------------------------------------------- rule labeller


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


# Ordered (label, pattern) rules: the first pattern that ``search``es the sentence wins.
DEFAULT_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    # Pure fillers ("Hmm.", "Okay.", "Let me think.") and write-up chatter carry no strategy.
    (
        "other",
        _rx(
            r"^(?:hmm+|okay|ok|alright|all right|right|yes|yeah|yep|good|great|got it|"
            r"let'?s see|let me see|let me think|let me think about (?:this|it)|"
            r"interesting|oh|ah|well|right,? so|okay,? so)[\s.!,…]*$"
        ),
    ),
    (
        "other",
        _rx(
            r"^\**\s*(?:final answer|answer|conclusion|summary)\s*:?\s*\**\s*:?$"
            r"|^(?:now )?(?:for|on to) part\b|\b(?:as follows|below)[.:]?$|moving on\b"
            r"|\blet me (?:write|organize|summarize|put|collect|tidy)\b|\bput it all together\b"
            r"|^(?:this|that) (?:is|was) an? (?:fun|nice|neat|interesting|tricky|long|tough)\b"
        ),
    ),
    # Backtracking: noticing an error, abandoning or revising what was just done.
    (
        "backtracking",
        _rx(
            r"^(?:but\s+|hmm+,?\s+|oh,?\s+|oops,?\s+|no,?\s+)?(?:wait|hold on|hang on|oops)\b"
            r"|^alternatively\b|^actually,?\s+(?:no|wait|that|i|scratch|we)\b|^instead\b"
            r"|\b(?:let me|let's|i should|i need to|i'?ll) (?:re-?check|re-?examine|recheck|"
            r"go back|reconsider|re-?do|redo|re-?evaluate|rethink|start over|backtrack)\b"
            r"|\b(?:another|a different|a better|a simpler|an alternative|other) "
            r"(?:approach|method|way|strategy|idea)\b|\binstead\.?$|\binstead of\b"
            r"|\b(?:i made a mistake|made an error|that'?s (?:not right|wrong|incorrect)|"
            r"that (?:can'?t|cannot) be right|doesn'?t (?:make sense|add up|work|match)|"
            r"contradict|miscalculat|mistake|scratch that|(?:was|is) wrong|isn'?t right|"
            r"messed up|misread|i forgot|getting (?:messy|complicated))"
        ),
    ),
    # A sentence that opens with a hedge is uncertainty even if it goes on to plan a check.
    ("uncertainty-estimation", _rx(r"^(?:hmm+,?\s*)?(?:maybe|perhaps|probably)\b")),
    # Example-testing: concrete cases, substitution and verification.
    (
        "example-testing",
        _rx(
            r"\b(?:let me|let's|let us|i'?ll|i can|i should|we can|to) (?:double[- ]check|"
            r"check|verify|confirm|test|try (?:it )?(?:with|for|on|a|some|small|specific|"
            r"plugging|substituting|n\s*=|x\s*=|an example|examples|a few)|plug|substitute|"
            r"sanity[- ]check|see if|see whether|compute a few)\b"
            r"|\b(?:plug(?:ging)?|substitut(?:e|ing)) (?:in|back|it|this|that|these|x|n|the)\b"
            r"|\btest(?:ing)? (?:with|this|it|that|on|the case)\b"
            r"|\b(?:for example|for instance|e\.g\.),? (?:if|when|take|let|suppose|with|n|x)\b"
            r"|^(?:suppose|say|take|consider|if|when|try)\s+[a-z]\s*=\s*-?\d"
            r"|^what if\b|^(?:try|checking|verify|verifying)\b|\bdoes .{1,30}\bwork\b"
            r"|\bsmall (?:case|example|values?)\b|\bsanity check\b|\bspecific (?:case|example)\b"
            r"|^(?:check|verification|testing)\s*:|^(?:suppose|say)\b.*\b(?:would|then)\b"
            r"|^take a (?:specific|concrete|simple)\b"
        ),
    ),
    # Uncertainty-estimation: hedging, confidence, and questioning one's own result.
    (
        "uncertainty-estimation",
        _rx(
            r"\b(?:maybe|perhaps|might|probably|possibly|presumably|i think|i guess|"
            r"i suppose|i believe|not (?:sure|certain|entirely sure)|unsure|uncertain|"
            r"i wonder|(?:not |fairly |pretty |very |quite )?confident|pretty sure|fairly sure|"
            r"seems?|feels? (?:right|wrong|off|correct)|could (?:be|it be)|confused|"
            r"is (?:that|this) (?:right|correct)|am i|unless|whether)\b"
            r"|^(?:hmm+,?\s*|wait,?\s*)?(?:is|are|does|do|did|can|could|would|should|am) "
            r"[^?]*\?$"
        ),
    ),
    # Adding-knowledge: facts, definitions, formulas and theorems from outside the problem.
    (
        "adding-knowledge",
        _rx(
            r"\b(?:we know that|i know that|it is (?:well[- ])?known|recall(?:ing)?\b|"
            r"remember(?:,| that| the)|the formula (?:for|is)|formulas?\b|by definition|"
            r"is defined as|definition of|(?:theorem|identity|lemma|law|rule|principle|"
            r"property|inequality) (?:says|states|tells|gives)|by (?:the )?\w+(?:'s)?(?:[- ]\w+)? "
            r"(?:theorem|formulas?|identity|rule|law|inequality|principle|property)|"
            r"according to the|in general,|there are \d+ \w+ in (?:a|an|one|each)\b|"
            r"is a (?:prime|perfect square)|the sum of (?:the )?(?:interior )?angles)"
            r"|^(?:also,? |note that )?(?:an?|one|any|every|each) (?!\d)\w+(?:[- ]\w+)? "
            r"(?:is|has|are|measures|equals|contains)\b"
            r"|^(?:in|for) (?:an?|any|every|each) (?!\d)"
            r"|^(?:also,? |note that )?the (?:area|volume|perimeter|circumference|expected value|"
            r"derivative|integral|sine|cosine|tangent) of (?:an?|any|the) \w+"
        ),
    ),
    # Initializing: restating the task and laying out a plan.
    (
        "initializing",
        _rx(
            r"^(?:okay|ok|alright|all right|so|first(?:ly)?|to start),?\s+(?:so\s+)?"
            r"(?:the (?:problem|question)|i(?: need| have|'m given| am given| want)|we(?: need| have|"
            r" are given|'re given| want|'re looking| are looking)|let'?s (?:see|start|begin|tackle|"
            r"figure|understand|break)|let me (?:start|begin|try to figure|figure|understand|"
            r"try to understand|read|parse|restate)|this is an? |the first thing)"
            r"|\b(?:let me|let's|i'?ll) (?:start|begin|approach this) (?:by|with)\b"
            r"|^first,? i (?:need|should|will|'ll|want)\b|\bthe (?:problem|question) (?:asks|"
            r"says|states|is asking|wants|gives|is about|mentions)\b|\bwe(?:'re| are) "
            r"(?:asked|given|told)\b|\bi(?:'m| am) (?:asked|given|told)\b|^(?:i|we) need to "
            r"(?:find|figure out|determine|compute|solve|calculate|show|prove)\b"
            r"|\bmy (?:plan|goal) is\b|^the goal is\b|\bunderstand the (?:problem|setup)\b"
            r"|^let me (?:parse|restate|rephrase|read)\b|^let'?s break (?:this|it) down\b"
            r"|\bunknowns\b"
        ),
    ),
    # Deduction: conclusions and computations.
    (
        "deduction",
        _rx(
            r"^(?:so|therefore|thus|hence|then|that means|this means|which means|"
            r"consequently|it follows|next|now|since|because|substituting|simplifying|"
            r"multiplying|dividing|adding|subtracting|expanding|combining|solving|factoring|"
            r"plugging|from)\b|\b(?:which gives|we get|gives us|we have|this gives|implies|"
            r"therefore|simplif(?:y|ies)|equals|is equal to|results? in|so the|that'?s|"
            r"comes out to|works out to|becomes|must be|leaves|left over|in total)\b"
            r"|, so\b|=|\d\s*[-+*/\u00d7x\u00f7^]\s*\d|\\frac|\b(?:times|plus|minus|"
            r"divided by|multiplied by)\b|\b\d+\s+(?:is|are)\b"
        ),
    ),
)


@dataclass(frozen=True)
class RuleLabeller:
    """Heuristic, offline labeller: ordered regex rules over a sentence's wording.

    Each rule is a ``(label, compiled_pattern)`` pair; the label of the first rule whose
    pattern ``search``es the (stripped) sentence wins, else ``default``. The rules are
    plain data: inspect them (``labeller.rules``, :meth:`explain`), extend them
    (:meth:`with_rules`) or replace them (``RuleLabeller(rules=...)``). This is a heuristic
    on surface wording, not a model of meaning: it is fast, deterministic and needs no
    network, and its accuracy should be measured (``bench/labeller.py``) before results
    rest on it.
    """

    rules: tuple[tuple[str, re.Pattern[str]], ...] = DEFAULT_RULES
    default: str = "other"
    labels: tuple[str, ...] = LABELS

    def __post_init__(self) -> None:
        rules = tuple(self.rules)
        for k, rule in enumerate(rules):
            if not (isinstance(rule, tuple) and len(rule) == 2):
                raise TypeError(
                    f"rule {k} must be a (label, pattern) pair, got {rule!r}; "
                    'write rules as ("backtracking", re.compile(r"^wait\\b", re.I))'
                )
            label, pattern = rule
            if label not in self.labels:
                raise ValueError(
                    f"rule {k} has unknown label {label!r}; use one of {list(self.labels)} "
                    "or pass labels=... with your own label set"
                )
            if not isinstance(pattern, re.Pattern):
                raise TypeError(
                    f"rule {k} ({label}) needs a compiled pattern, got {type(pattern).__name__}; "
                    "wrap it with re.compile(...)"
                )
        if self.default not in self.labels:
            raise ValueError(
                f"default label {self.default!r} is not in {list(self.labels)}; pick one of them"
            )
        object.__setattr__(self, "rules", rules)

    def with_rules(
        self, rules: Iterable[tuple[str, re.Pattern[str]]], *, first: bool = True
    ) -> RuleLabeller:
        """A copy with extra rules placed before (``first=True``) or after the current ones."""
        extra = tuple(rules)
        merged = extra + self.rules if first else self.rules + extra
        return RuleLabeller(rules=merged, default=self.default, labels=self.labels)

    def explain(self, sentence: str) -> tuple[str, str | None]:
        """The label of ``sentence`` and the pattern that produced it (None for the default)."""
        if not isinstance(sentence, str):
            raise TypeError(f"expected a sentence str, got {type(sentence).__name__}")
        s = sentence.strip()
        for label, pattern in self.rules:
            if pattern.search(s):
                return label, pattern.pattern
        return self.default, None

    def label(self, sentence: str) -> str:
        """The label of one sentence."""
        return self.explain(sentence)[0]

    def __call__(self, sentences: list[str]) -> list[str]:
        if isinstance(sentences, str):
            raise TypeError("a labeller takes a list of sentences, got one str; wrap it in [...]")
        return [self.label(s) for s in sentences]


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
    label for the token's own text: cue words such as "Wait", "Alternatively", "Maybe",
    "So" or "Recall" are labelled reliably, while a token like "Let" gets the default
    label. Routers that need more context can call this with a longer ``next_text``.
    """
    if not isinstance(prefix, str) or not isinstance(next_text, str):
        raise TypeError(
            "segment_start_label expects prefix and next_text as str (decode token ids first)"
        )
    word = next_text.lstrip()
    if not word:
        return None
    tail = prefix[-_TAIL_CHARS:]
    for tag in (_OPEN_TAG, _CLOSE_TAG):
        at = tail.rfind(tag)
        if at != -1:
            tail = tail[at + len(tag) :]
    if _inside_math(tail):
        return None
    before = tail + next_text[: len(next_text) - len(word)]
    if before and not before[-1].isspace():
        return None
    body = before.rstrip()
    if body:
        last_line = body.rsplit("\n", 1)[-1]
        line_break = "\n" in before[len(body) :]
        marker = _MARKER_ONLY_RE.fullmatch(last_line.strip())
        if not line_break and marker is None:
            combined = before + word[:1]
            cut = _boundaries_in_line(combined, 0, len(combined), _Protected(combined, 0, 0))
            if not cut or cut[-1] != len(before):
                return None
    return _apply_labeller(labeller or _DEFAULT_LABELLER, [word.rstrip()], labels)[0]
