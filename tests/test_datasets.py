"""Tests for the local GSM8K / MATH-500 JSON Lines loaders."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from rlvr.text.datasets import Problem, load_gsm8k_jsonl, load_math500_jsonl


def _write(path: Path, rows: list[object | str]) -> Path:
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_load_gsm8k(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "gsm8k.jsonl",
        [
            {
                "question": "Natalia sold clips to 48 friends... How many in all?",
                "answer": "She sold 48/2 = <<48/2=24>>24 in May.\n48+24 = <<48+24=72>>72\n#### 72",
            },
            "",
            {"question": "A big sum?", "answer": "Add them.\n#### 1,200"},
        ],
    )
    problems = load_gsm8k_jsonl(path)
    assert [p.id for p in problems] == ["gsm8k/0", "gsm8k/1"]
    assert [p.reference for p in problems] == ["72", "1200"]
    assert problems[0].prompt.startswith("Natalia sold")
    assert problems[0].meta["solution"].endswith("#### 72")
    assert problems[1].meta["line"] == 3
    assert isinstance(problems[0], Problem)
    with pytest.raises(dataclasses.FrozenInstanceError):
        problems[0].reference = "0"  # type: ignore[misc]


def test_load_math500(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "math500.jsonl",
        [
            {
                "problem": "Convert the point $(0,3)$ to polar coordinates.",
                "answer": "\\left( 3, \\frac{\\pi}{2} \\right)",
                "level": 2,
                "subject": "Precalculus",
                "unique_id": "test/precalculus/807.json",
                "solution": "We have r = 3 ...",
            },
            {"problem": "What is 2+2?", "answer": 4},
        ],
    )
    problems = load_math500_jsonl(str(path))
    assert problems[0].id == "test/precalculus/807.json"
    assert problems[0].reference == "\\left( 3, \\frac{\\pi}{2} \\right)"
    assert problems[0].meta == {
        "line": 1,
        "level": 2,
        "subject": "Precalculus",
        "solution": "We have r = 3 ...",
    }
    assert problems[1].id == "math500/1"
    assert problems[1].reference == "4"
    assert problems[1].meta == {"line": 2}


@pytest.mark.parametrize("loader", [load_gsm8k_jsonl, load_math500_jsonl])
def test_missing_file_explains_how_to_get_a_local_copy(loader, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="never downloads") as err:
        loader(tmp_path / "absent.jsonl")
    assert "to_json" in str(err.value) and "load_dataset" in str(err.value)


def test_bad_json_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "g.jsonl", [{"question": "q", "answer": "#### 1"}, "{not json"])
    with pytest.raises(ValueError, match="line 2: not valid JSON"):
        load_gsm8k_jsonl(path)
    path = _write(tmp_path / "m.jsonl", ["[1, 2]"])
    with pytest.raises(ValueError, match="line 1: expected a JSON object"):
        load_math500_jsonl(path)


def test_missing_fields_name_the_expected_fields_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "g.jsonl", [{"question": "q", "answer": "#### 1"}, {"q": "x"}])
    with pytest.raises(ValueError, match=r"line 2: missing field\(s\) \['question', 'answer'\]"):
        load_gsm8k_jsonl(path)
    path = _write(tmp_path / "m.jsonl", [{"problem": "p"}])
    with pytest.raises(ValueError, match=r"line 1: missing field\(s\) \['answer'\].*'problem'"):
        load_math500_jsonl(path)
    path = _write(tmp_path / "e.jsonl", [{"problem": " ", "answer": "1"}])
    with pytest.raises(ValueError, match="'problem' must be a non-empty string"):
        load_math500_jsonl(path)


def test_gsm8k_answer_without_marker(tmp_path: Path) -> None:
    path = _write(tmp_path / "g.jsonl", [{"question": "q", "answer": "It is 5."}])
    with pytest.raises(ValueError, match="line 1: .*'####"):
        load_gsm8k_jsonl(path)


def test_path_type_is_checked() -> None:
    with pytest.raises(TypeError, match="path"):
        load_gsm8k_jsonl(42)  # type: ignore[arg-type]
