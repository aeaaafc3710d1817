"""Loaders for local copies of GSM8K and MATH-500 in JSON Lines form.

The toolkit never downloads anything. To get the files, on a machine with internet access
and the ``datasets`` library::

    from datasets import load_dataset
    load_dataset("openai/gsm8k", "main", split="test").to_json("gsm8k_test.jsonl")
    load_dataset("HuggingFaceH4/MATH-500", split="test").to_json("math500_test.jsonl")

then copy the ``.jsonl`` files to where the experiments run and pass their paths here.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Problem", "load_gsm8k_jsonl", "load_math500_jsonl"]


@dataclass(frozen=True)
class Problem:
    """One evaluation problem: the prompt to pose and the reference answer to check against.

    ``meta`` holds source-specific extras (the GSM8K worked solution, MATH level and
    subject, the 1-based ``line`` in the source file).
    """

    id: str
    prompt: str
    reference: str
    meta: dict[str, Any] = field(default_factory=dict, hash=False)


_HOW_TO_GET = {
    "gsm8k": 'load_dataset("openai/gsm8k", "main", split="test").to_json("gsm8k_test.jsonl")',
    "math500": (
        'load_dataset("HuggingFaceH4/MATH-500", split="test").to_json("math500_test.jsonl")'
    ),
}


def _records(path: str | os.PathLike[str], kind: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each non-blank line of a JSON Lines file."""
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(
            f"{kind} file not found: {p}. The toolkit never downloads data; make a local "
            "copy on a machine with internet access, e.g. with the `datasets` library: "
            f"`from datasets import load_dataset; {_HOW_TO_GET[kind]}`, then pass the path "
            "of that .jsonl file."
        )
    with p.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(
                    f"{p}, line {lineno}: not valid JSON ({err.msg}); the file must be JSON "
                    "Lines, one object per line (as written by Dataset.to_json)"
                ) from err
            if not isinstance(record, dict):
                raise ValueError(
                    f"{p}, line {lineno}: expected a JSON object, got {type(record).__name__}; "
                    "each line must be one object per problem"
                )
            yield lineno, record


def _require(record: dict[str, Any], fields: tuple[str, ...], where: str, kind: str) -> None:
    missing = [name for name in fields if name not in record]
    if missing:
        raise ValueError(
            f"{where}: missing field(s) {missing}; {kind} lines need {list(fields)} "
            f"(found {sorted(record)}). Export the original dataset with to_json, or rename "
            "the fields."
        )
    for name in fields:
        value = record[name]
        if name == "answer" and isinstance(value, int | float) and not isinstance(value, bool):
            continue
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{where}: field {name!r} must be a non-empty string, got {value!r}")


_GSM8K_FINAL = re.compile(r"####\s*(.+?)\s*$", re.DOTALL)


def load_gsm8k_jsonl(path: str | os.PathLike[str]) -> list[Problem]:
    """Load GSM8K from a local JSON Lines file with fields "question" and "answer".

    The reference is the number after ``####`` in the worked answer, with thousands
    commas removed ("#### 1,200" -> "1200"). Ids are ``gsm8k/<k>`` with ``k`` the 0-based
    record index; ``meta`` holds the worked ``solution`` and the source ``line``.
    """
    problems: list[Problem] = []
    for lineno, record in _records(path, "gsm8k"):
        where = f"{path}, line {lineno}"
        _require(record, ("question", "answer"), where, "GSM8K")
        solution = record["answer"]
        if not isinstance(solution, str):
            raise ValueError(f"{where}: GSM8K 'answer' must be the worked solution text")
        match = _GSM8K_FINAL.search(solution)
        if match is None or not match.group(1).strip():
            raise ValueError(
                f"{where}: the 'answer' field has no '#### <number>' line; GSM8K answers end "
                "with the final number after '####'"
            )
        reference = match.group(1).strip().replace(",", "")
        problems.append(
            Problem(
                id=f"gsm8k/{len(problems)}",
                prompt=record["question"].strip(),
                reference=reference,
                meta={"solution": solution, "line": lineno},
            )
        )
    return problems


def load_math500_jsonl(path: str | os.PathLike[str]) -> list[Problem]:
    """Load MATH-500 (or MATH) from a local JSON Lines file with "problem" and "answer".

    Optional fields "level", "subject" and "solution" go to ``meta`` (with the source
    ``line``); the id is "unique_id" when present (e.g. ``test/algebra/1.json``), else
    ``math500/<k>`` with ``k`` the 0-based record index. The reference is the answer
    string as given (compare it with :func:`rlvr.text.answers.is_equiv`).
    """
    problems: list[Problem] = []
    for lineno, record in _records(path, "math500"):
        where = f"{path}, line {lineno}"
        _require(record, ("problem", "answer"), where, "MATH-500")
        meta: dict[str, Any] = {"line": lineno}
        for name in ("level", "subject", "solution"):
            if name in record:
                meta[name] = record[name]
        unique_id = record.get("unique_id")
        problems.append(
            Problem(
                id=str(unique_id) if unique_id not in (None, "") else f"math500/{len(problems)}",
                prompt=record["problem"].strip(),
                reference=str(record["answer"]).strip(),
                meta=meta,
            )
        )
    return problems
