"""Annotated reasoning traces: read and write them, as labelled character spans.

Two layouts are read, from ``.json`` (a list of records) or ``.jsonl`` (one record a line):

* the paper's layout (arXiv:2506.18167's repository stores LLM-annotated traces this way):
  a record holds the original reasoning text (``thinking_process``, ``original``, ``text``
  or ``full_response``) and the same text annotated segment by segment
  (``annotated_thinking`` or ``annotated``)::

      ["initializing"]Okay, so I need to find x.["end-section"] ["deduction"]So x = 2.["end-section"]

  A label may carry a score prefix (``["0.83:deduction"]``), which is ignored. Each
  segment is located in the original text, so spans are exact character offsets into it
  (whitespace inside a segment may differ from the original). Without an original text,
  the annotated text with its markers removed is taken as the original.
* sentence lists: ``{"sentences": [...], "labels": [...]}`` per trace, or one
  ``{"text": ..., "label": ...}`` row per sentence, grouped into traces by a ``trace`` key
  (rows without one form a single trace named after the file, in file order, so that a
  labeller sees no invented trace starts).

Every problem (unknown label, a marker left open, a segment that is not in the original,
sentence and label counts that differ, a trace with no labelled segment) raises
:class:`AnnotationError` naming the file, the record and what to fix, before any
labelling starts. The spans build ``probes.LabeledTrace`` directly:
``probes.LabeledTrace(t.text, t.spans)``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .labels import LABELS, LabeledSentence

__all__ = [
    "AnnotatedTrace",
    "AnnotationError",
    "format_annotated",
    "parse_annotated",
    "read_annotated",
    "write_annotated",
]

ORIGINAL_KEYS = ("thinking_process", "original", "text", "full_response")
ANNOTATED_KEYS = ("annotated_thinking", "annotated")
END = '["end-section"]'
_SEGMENT_RE = re.compile(r'\["(?:[0-9.]+:)?([^"\]\n]+)"\](.*?)\["end-section"\]', re.DOTALL)
_MARKER_RE = re.compile(r'\["(?:[0-9.]+:)?[^"\]\n]+"\]')


class AnnotationError(ValueError):
    """A malformed annotated file or record; the message names the record and the fix."""


@dataclass(frozen=True)
class AnnotatedTrace:
    """One annotated trace: its text and labelled sentences (``text[s.start:s.end] == s.text``)."""

    id: str
    text: str
    sentences: tuple[LabeledSentence, ...]
    split: str = ""
    problem: str = ""

    @property
    def spans(self) -> list[tuple[int, int, str]]:
        """``(start, end, label)`` character spans, ready for ``probes.LabeledTrace``."""
        return [(s.start, s.end, s.label) for s in self.sentences]

    @property
    def texts(self) -> list[str]:
        return [s.text for s in self.sentences]

    @property
    def labels(self) -> list[str]:
        return [s.label for s in self.sentences]


def _locate(text: str, piece: str, cursor: int) -> tuple[int, int] | None:
    at = text.find(piece, cursor)
    if at != -1:
        return at, at + len(piece)
    words = piece.split()
    m = re.compile(r"\s+".join(re.escape(w) for w in words)).search(text, cursor)
    return (m.start(), m.end()) if m else None


def _check_label(label: str, labels: Sequence[str], where: str) -> None:
    if label not in labels:
        raise AnnotationError(
            f"{where}: unknown label {label!r}; labels must be one of {list(labels)} "
            "(rename it in the file, or pass labels=... with your label set)"
        )


def _spans_in(
    text: str, pieces: Sequence[tuple[str, str]], labels: Sequence[str], where: str
) -> tuple[LabeledSentence, ...]:
    out: list[LabeledSentence] = []
    cursor = 0
    for k, (label, piece) in enumerate(pieces):
        _check_label(label, labels, f"{where}, segment {k}")
        piece = piece.strip()
        if not piece:
            raise AnnotationError(f"{where}, segment {k} ({label}): empty segment; remove it")
        found = _locate(text, piece, cursor)
        if found is None:
            raise AnnotationError(
                f"{where}, segment {k} ({label}): {piece[:60]!r} does not occur in the original "
                "text after the previous segment; the annotated and original texts must hold "
                "the same sentences in the same order"
            )
        out.append(LabeledSentence(found[0], found[1], text[found[0] : found[1]], label))
        cursor = found[1]
    if not out:
        raise AnnotationError(f"{where}: empty trace (no labelled segment); drop the record")
    return tuple(out)


def parse_annotated(
    annotated: str,
    original: str | None = None,
    *,
    labels: Sequence[str] = LABELS,
    strict: bool = True,
    where: str = "trace",
) -> tuple[str, tuple[LabeledSentence, ...]]:
    """The original text and labelled spans of an annotated text.

    ``strict`` refuses text outside every segment (with ``strict=False`` it is left
    unlabelled). ``where`` names the record in error messages.
    """
    if not isinstance(annotated, str):
        raise AnnotationError(f"{where}: the annotated text must be a str, got {annotated!r}")
    pieces: list[tuple[str, str]] = []
    last = 0
    for m in _SEGMENT_RE.finditer(annotated):
        _outside(annotated[last : m.start()], strict, where, len(pieces))
        body = m.group(2)
        if _MARKER_RE.search(body):
            raise AnnotationError(
                f"{where}, segment {len(pieces)}: a label marker inside a segment (a missing "
                f'{END}?); close every ["label"] with {END}'
            )
        pieces.append((m.group(1).strip(), body))
        last = m.end()
    _outside(annotated[last:], strict, where, len(pieces))
    if original is None:
        original = _MARKER_RE.sub("", annotated.replace(END, ""))
    return original, _spans_in(original, pieces, labels, where)


def _outside(gap: str, strict: bool, where: str, k: int) -> None:
    if _MARKER_RE.search(gap):
        raise AnnotationError(
            f'{where}, segment {k}: a ["label"] marker with no {END} after it; close it'
        )
    if strict and gap.strip():
        raise AnnotationError(
            f"{where}: text outside any labelled segment before segment {k}: "
            f"{gap.strip()[:60]!r}; label it, or read with strict=False to leave it unlabelled"
        )


def _first(record: dict[str, Any], keys: Iterable[str]) -> Any:
    for key in keys:
        if key in record:
            return record[key]
    return None


def _record_id(record: dict[str, Any], default: str) -> str:
    got = _first(record, ("id", "trace_id", "trace"))
    return default if got is None else str(got)


def _from_record(
    record: Any, default_id: str, labels: Sequence[str], strict: bool, where: str
) -> AnnotatedTrace:
    if not isinstance(record, dict):
        raise AnnotationError(f"{where}: expected a JSON object, got {type(record).__name__}")
    rid = _record_id(record, default_id)
    where = f"{where} (id {rid})"
    split, problem = str(record.get("split", "")), str(record.get("problem", ""))
    original = _first(record, ORIGINAL_KEYS)
    if original is not None and not isinstance(original, str):
        raise AnnotationError(f"{where}: the original text must be a str")
    annotated = _first(record, ANNOTATED_KEYS)
    if annotated is not None:
        text, sents = parse_annotated(
            annotated, original, labels=labels, strict=strict, where=where
        )
        return AnnotatedTrace(rid, text, sents, split, problem)
    if "sentences" in record:
        sentences, found = record["sentences"], record.get("labels")
        if not isinstance(sentences, list) or not isinstance(found, list):
            raise AnnotationError(f'{where}: "sentences" and "labels" must both be lists')
        if len(sentences) != len(found):
            raise AnnotationError(
                f"{where}: {len(sentences)} sentences but {len(found)} labels; give exactly one "
                "label per sentence"
            )
        if not all(isinstance(s, str) for s in sentences + found):
            raise AnnotationError(f'{where}: "sentences" and "labels" must hold strings')
        text = original if original is not None else " ".join(s.strip() for s in sentences)
        sents = _spans_in(text, list(zip(found, sentences)), labels, where)
        return AnnotatedTrace(rid, text, sents, split, problem)
    raise AnnotationError(
        f"{where}: no annotation; give {ANNOTATED_KEYS[0]!r} (with {ORIGINAL_KEYS[0]!r}), "
        '"sentences" and "labels", or one {"text", "label"} row per sentence'
    )


def _load_records(path: Path) -> list[tuple[str, Any]]:
    """``(where, record)`` pairs of a .json list or a .jsonl file."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; pass the path of an annotated .json/.jsonl")
    raw = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        out = []
        for lineno, line in enumerate(raw.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                out.append((f"{path}:{lineno}", json.loads(line)))
            except json.JSONDecodeError as err:
                raise AnnotationError(f"{path}:{lineno}: not valid JSON ({err.msg})") from err
        return out
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as err:
        raise AnnotationError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from err
    if isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise AnnotationError(f"{path}: expected a JSON list of records")
        data = lists[0]
    if not isinstance(data, list):
        raise AnnotationError(f"{path}: expected a JSON list of records")
    return [(f"{path}: record {k}", rec) for k, rec in enumerate(data)]


def read_annotated(
    path: str | Path, *, labels: Sequence[str] = LABELS, strict: bool = True
) -> list[AnnotatedTrace]:
    """All annotated traces of a file (layouts in the module docstring), checked up front."""
    path = Path(path)
    records = _load_records(path)
    if not records:
        raise AnnotationError(f"{path}: no records; the file is empty")
    traces: list[AnnotatedTrace] = []
    groups: dict[str, list[tuple[str, str, str, str]]] = {}
    order: list[str] = []
    for k, (where, rec) in enumerate(records):
        if isinstance(rec, dict) and "label" in rec and "text" in rec:
            label, text = rec["label"], rec["text"]
            if not isinstance(label, str) or not isinstance(text, str) or not text.strip():
                raise AnnotationError(f'{where}: "text" and "label" must be non-empty strings')
            _check_label(label, labels, where)
            tid = str(_first(rec, ("trace", "trace_id")) or path.stem)
            if tid not in groups:
                groups[tid] = []
                order.append(tid)
            groups[tid].append((where, text.strip(), label, str(rec.get("split", ""))))
            continue
        traces.append(_from_record(rec, f"record{k}", labels, strict, where))
    for tid in order:
        rows = groups[tid]
        text = " ".join(row[1] for row in rows)
        sents = _spans_in(text, [(row[2], row[1]) for row in rows], labels, rows[0][0])
        splits = {row[3] for row in rows}
        split = splits.pop() if len(splits) == 1 else ""
        traces.append(AnnotatedTrace(tid, text, sents, split))
    ids = [t.id for t in traces]
    dup = next((i for i in ids if ids.count(i) > 1), None)
    if dup is not None:
        raise AnnotationError(f"{path}: trace id {dup!r} appears twice; ids must be unique")
    return traces


def format_annotated(trace: AnnotatedTrace) -> str:
    """The annotated text of a trace: each sentence as ``["label"]sentence["end-section"]``,
    the text between sentences kept as it is in the original."""
    parts: list[str] = []
    last = 0
    for s in trace.sentences:
        parts.append(trace.text[last : s.start])
        parts.append(f'["{s.label}"]{s.text}{END}')
        last = s.end
    parts.append(trace.text[last:])
    return "".join(parts)


def write_annotated(traces: Iterable[AnnotatedTrace], path: str | Path) -> Path:
    """Write traces in the paper's layout (``.json``: a list; ``.jsonl``: one a line)."""
    path = Path(path)
    records = [
        {
            "id": t.id,
            "split": t.split,
            "problem": t.problem,
            "thinking_process": t.text,
            "annotated_thinking": format_annotated(t),
        }
        for t in traces
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".jsonl":
        body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    else:
        body = json.dumps(records, ensure_ascii=False, indent=1) + "\n"
    path.write_text(body, encoding="utf-8")
    return path
