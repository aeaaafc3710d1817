"""Labelled traces: text with strategy-labelled character spans, aligned to tokens once.

Alignment rule: a span covers every token whose character range overlaps it. A span
may start or end inside a token only where the part of that token outside the span is
whitespace (BPE tokenizers glue the leading space to the next word: `` Wait``); any
other cut through a token cannot be aligned and raises.

Duplicates and overlap: every span gives one pooled row, so a span given twice (same
start, end and label, in characters or, after alignment, in tokens) would count its
row twice; it is refused. Overlapping spans are allowed and each keeps its own row:
a token inside two spans contributes to both (e.g. a ``check`` nested in a ``step``),
and ``REST`` excludes the positions of every span.
"""

from __future__ import annotations

import hashlib
import json
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Span:
    """A labelled character range ``[start, end)`` of a trace's text."""

    start: int
    end: int
    label: str

    def __post_init__(self) -> None:
        if not isinstance(self.label, str) or not self.label:
            raise ValueError(f"span label must be a non-empty string, got {self.label!r}")
        if self.start < 0 or self.end <= self.start:
            raise ValueError(
                f"span [{self.start}, {self.end}) for {self.label!r} is empty or negative: "
                "give 0 <= start < end"
            )


@dataclass(frozen=True)
class TokenSpan:
    """A span aligned to tokens: ``[start, end)`` token indices into ``input_ids``."""

    start: int
    end: int
    label: str


@dataclass
class LabeledTrace:
    """One trace: ``text`` (or ``token_ids``) and its labelled spans.

    ``scored_from`` is the character (or token, with ``token_ids``) offset where the part
    of the trace that counts for the "rest" baseline begins, e.g. the end of the prompt.
    With ``token_ids`` given instead of text, spans are token ranges already.
    """

    text: str | None = None
    spans: list[Span] = field(default_factory=list)
    token_ids: list[int] | None = None
    scored_from: int = 0
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.text is None) == (self.token_ids is None):
            raise ValueError("give a LabeledTrace either text or token_ids (exactly one)")
        n = len(self.text) if self.text is not None else len(self.token_ids or [])
        if n == 0:
            raise ValueError("empty trace: text/token_ids has no content")
        self.spans = [s if isinstance(s, Span) else Span(*s) for s in self.spans]
        seen: set[Span] = set()
        for s in self.spans:
            if s in seen:
                raise ValueError(
                    f"span [{s.start}, {s.end}) {s.label!r} is given twice: each span gives one "
                    "row, so a duplicate would count it twice; remove it"
                )
            seen.add(s)
            if s.end > n:
                unit = "characters" if self.text is not None else "tokens"
                raise ValueError(
                    f"span [{s.start}, {s.end}) for {s.label!r} lies outside the trace "
                    f"({n} {unit}): fix the offsets"
                )

    @property
    def labels(self) -> list[str]:
        return sorted({s.label for s in self.spans})

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "token_ids": self.token_ids,
            "spans": [[s.start, s.end, s.label] for s in self.spans],
            "scored_from": self.scored_from,
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LabeledTrace:
        return cls(
            text=d.get("text"),
            token_ids=d.get("token_ids"),
            spans=[Span(*s) for s in d.get("spans", [])],
            scored_from=d.get("scored_from", 0),
            meta=d.get("meta", {}),
        )


@dataclass
class AlignedTrace:
    """A trace tokenized once: ids, and spans in token indices."""

    input_ids: list[int]
    spans: list[TokenSpan]
    scored_from: int  # token index


def data_hash(traces: Sequence[LabeledTrace]) -> str:
    """SHA-256 of the traces' content: records which data a vector was fitted on."""
    h = hashlib.sha256()
    for t in traces:
        h.update(json.dumps(t.to_dict(), sort_keys=True, default=str).encode())
    return h.hexdigest()


def _is_blank(s: str) -> bool:
    return s.strip() == ""


def align(trace: LabeledTrace, tokenizer: Any, add_special_tokens: bool = True) -> AlignedTrace:
    """Tokenize a trace and map its character spans to token spans."""
    if trace.token_ids is not None:
        spans = [TokenSpan(s.start, s.end, s.label) for s in trace.spans]
        return AlignedTrace(list(trace.token_ids), spans, trace.scored_from)
    if not getattr(tokenizer, "is_fast", False):
        raise TypeError(
            "this tokenizer gives no character offsets (it is not a 'fast' tokenizer): "
            "load it with AutoTokenizer.from_pretrained(..., use_fast=True), or pass "
            "LabeledTrace(token_ids=..., spans=token ranges)"
        )
    text = trace.text
    assert text is not None
    enc = tokenizer(text, return_offsets_mapping=True, add_special_tokens=add_special_tokens)
    ids: list[int] = enc["input_ids"]
    offsets: list[tuple[int, int]] = [tuple(o) for o in enc["offset_mapping"]]
    # special tokens come back as (0, 0): they cover no text; real tokens are in text order
    real = [i for i, (a, b) in enumerate(offsets) if b > a]
    starts = [offsets[i][0] for i in real]
    ends = [offsets[i][1] for i in real]

    def first_token_at_or_after(ch: int) -> int:
        j = bisect_right(ends, ch)
        return real[j] if j < len(real) else len(ids)

    out: list[TokenSpan] = []
    for s in trace.spans:
        first, last = bisect_right(ends, s.start), bisect_left(starts, s.end) - 1
        if first > last:
            raise ValueError(
                f"span [{s.start}, {s.end}) {s.label!r} ({text[s.start : s.end]!r}) covers no "
                "token: check the offsets"
            )
        toks = (real[first], real[last])
        a, b = toks[0], toks[-1]
        head = text[offsets[a][0] : s.start]
        tail = text[s.end : offsets[b][1]]
        if head and not _is_blank(head) or tail and not _is_blank(tail):
            tok_text = text[offsets[a][0] : offsets[b][1]]
            raise ValueError(
                f"span [{s.start}, {s.end}) {s.label!r} cuts through a token "
                f"({tok_text!r}): move the span boundaries to token boundaries"
            )
        ts = TokenSpan(a, b + 1, s.label)
        if ts in out:
            raise ValueError(
                f"span [{s.start}, {s.end}) {s.label!r} covers the same tokens as another "
                f"{s.label!r} span (they differ only in whitespace): its row would count twice; "
                "remove one"
            )
        out.append(ts)
    scored = first_token_at_or_after(trace.scored_from)  # never a special token such as BOS
    return AlignedTrace(ids, out, scored)


def collect_labels(traces: Iterable[LabeledTrace]) -> list[str]:
    return sorted({s.label for t in traces for s in t.spans})


def labelled_traces(task: Any, problems: Sequence[Any], samples: Any) -> list[LabeledTrace]:
    """Sampled completions as labelled traces, in the samples' row order.

    ``task`` gives ``prompt(problem)`` and ``spans(prompt, completion) -> [(start, end,
    label)]`` in characters of ``prompt + completion`` (an ``rlvr.tasks`` task or the
    organism's ``PermutationChain``); ``samples`` gives ``texts`` and ``prompt_index`` into
    ``problems`` (``rlvr.generation.sampling.Samples``). Each completion becomes the trace ``prompt +
    completion`` with its spans, scored from the completion's start; completions without a
    span are left out.
    """
    traces = []
    for row, text in enumerate(samples.texts):
        prompt = task.prompt(problems[samples.prompt_index[row]])
        spans = task.spans(prompt, text)
        if spans:
            traces.append(
                LabeledTrace(prompt + text, [Span(*s) for s in spans], scored_from=len(prompt))
            )
    return traces
