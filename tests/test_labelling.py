"""Tests for annotated traces, agreement measures, the trained labeller and load_labeller."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, cohen_kappa_score, f1_score

from rlvr.tasks import MathTask
from rlvr.text.labelling import (
    AnnotatedTrace,
    AnnotationError,
    RuleLabeller,
    TrainedLabeller,
    agreement,
    describe_labeller,
    evaluate,
    format_annotated,
    load_labeller,
    parse_annotated,
    read_annotated,
    write_annotated,
)
from rlvr.text.reasoning import label_trace

DEV = Path(__file__).resolve().parents[1] / "data" / "reasoning" / "dev_traces.json"

ORIGINAL = "Okay, so I need x.\n\nSo  2x = 6, hence x = 3.   Wait, is that right? Check: 2(3) = 6."
ANNOTATED = (
    '["initializing"]Okay, so I need x.["end-section"]\n\n'
    '["0.91:deduction"]So 2x = 6, hence x = 3.["end-section"] '
    '["uncertainty-estimation"] Wait, is that right? ["end-section"]'
    '["example-testing"]Check: 2(3) = 6.["end-section"]'
)


def _write(tmp_path: Path, name: str, records) -> Path:
    path = tmp_path / name
    if name.endswith(".jsonl"):
        path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    else:
        path.write_text(json.dumps(records), encoding="utf-8")
    return path


# ------------------------------------------------------------------ annotated traces


def test_parse_annotated_gives_exact_spans_in_the_original() -> None:
    text, sentences = parse_annotated(ANNOTATED, ORIGINAL)
    assert text == ORIGINAL
    assert [s.label for s in sentences] == [
        "initializing",
        "deduction",
        "uncertainty-estimation",
        "example-testing",
    ]
    for s in sentences:
        assert ORIGINAL[s.start : s.end] == s.text
    assert sentences[1].text == "So  2x = 6, hence x = 3."  # whitespace as in the original


def test_annotated_spans_build_probe_traces() -> None:
    import probes

    trace = read_annotated(DEV)[0]
    labelled = probes.LabeledTrace(trace.text, trace.spans)
    assert [trace.text[s.start : s.end] for s in labelled.spans] == trace.texts
    assert [s.label for s in labelled.spans] == trace.labels


def test_write_then_read_round_trips(tmp_path: Path) -> None:
    traces = read_annotated(DEV)[:3]
    for name in ("copy.json", "copy.jsonl"):
        back = read_annotated(write_annotated(traces, tmp_path / name))
        assert back == traces
    assert parse_annotated(format_annotated(traces[0]))[0] == traces[0].text


def test_read_sentence_lists_and_rows(tmp_path: Path) -> None:
    lists = _write(
        tmp_path,
        "lists.json",
        [
            {
                "id": "a",
                "sentences": ["Okay, x.", "So x = 1."],
                "labels": ["initializing", "deduction"],
            }
        ],
    )
    (trace,) = read_annotated(lists)
    assert trace.text == "Okay, x. So x = 1." and trace.labels == ["initializing", "deduction"]
    rows = _write(
        tmp_path,
        "rows.jsonl",
        [
            {"trace": "t1", "text": "Okay, x.", "label": "initializing"},
            {"trace": "t2", "text": "Wait, no.", "label": "backtracking"},
            {"trace": "t1", "text": "So x = 1.", "label": "deduction"},
        ],
    )
    got = {t.id: t for t in read_annotated(rows)}
    assert got["t1"].texts == ["Okay, x.", "So x = 1."] and got["t2"].labels == ["backtracking"]
    loose = _write(
        tmp_path,
        "loose.jsonl",
        [
            {"text": "So x = 1.", "label": "deduction"},
            {"text": "Hmm, odd.", "label": "backtracking"},
        ],
    )
    (one,) = read_annotated(loose)  # rows without a trace key: one trace, in file order
    assert one.id == "loose" and one.texts == ["So x = 1.", "Hmm, odd."]


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (
            {
                "id": "r7",
                "thinking_process": "x",
                "annotated_thinking": '["musing"]x["end-section"]',
            },
            r"record 0 \(id r7\), segment 0: unknown label 'musing'",
        ),
        (
            {"id": "r7", "sentences": ["a.", "b."], "labels": ["deduction"]},
            r"id r7\): 2 sentences but 1 labels",
        ),
        ({"id": "r7", "thinking_process": "", "annotated_thinking": ""}, r"id r7\): empty trace"),
        (
            {"id": "r7", "thinking_process": "a b", "annotated_thinking": '["deduction"]a b'},
            r"no \[\"end-section\"\] after it",
        ),
        (
            {
                "id": "r7",
                "thinking_process": "a b",
                "annotated_thinking": '["deduction"]z["end-section"]',
            },
            r"'z' does not occur in the original",
        ),
        (
            {
                "id": "r7",
                "thinking_process": "a b",
                "annotated_thinking": 'a ["deduction"]b["end-section"]',
            },
            r"text outside any labelled segment",
        ),
        ({"id": "r7", "thinking_process": "a"}, r"id r7\): no annotation"),
    ],
)
def test_bad_annotated_records_name_the_record(tmp_path: Path, record, message: str) -> None:
    with pytest.raises(AnnotationError, match=message):
        read_annotated(_write(tmp_path, "bad.json", [record]))


def test_bad_files_are_refused_up_front(tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"text": "So x.", "label": "deduction"}\n{"text": "Hm", "label": "?"}\n')
    with pytest.raises(AnnotationError, match=r"rows.jsonl:2: unknown label '\?'"):
        read_annotated(rows)
    rows.write_text('{"text": "So x.", "label": "deduction"}\nnot json\n')
    with pytest.raises(AnnotationError, match=r"rows.jsonl:2: not valid JSON"):
        read_annotated(rows)
    dup = [{"id": "a", "sentences": ["x."], "labels": ["deduction"]}] * 2
    with pytest.raises(AnnotationError, match="'a' appears twice"):
        read_annotated(_write(tmp_path, "dup.json", dup))
    with pytest.raises(AnnotationError, match="no records"):
        read_annotated(_write(tmp_path, "empty.json", []))
    with pytest.raises(FileNotFoundError):
        read_annotated(tmp_path / "missing.json")
    loose = {
        "id": "a",
        "thinking_process": "a b",
        "annotated_thinking": 'a ["deduction"]b["end-section"]',
    }
    (trace,) = read_annotated(_write(tmp_path, "loose.json", [loose]), strict=False)
    assert trace.spans == [(2, 3, "deduction")]


def test_dev_set_meets_its_description() -> None:
    traces = read_annotated(DEV)
    held = [t for t in traces if t.split == "heldout"]
    assert len(traces) >= 40 and sum(len(t.sentences) for t in traces) >= 1000
    assert {t.id for t in held} == {f"t{k:02d}" for k in range(3, 77, 3)}
    labels = [x for t in traces for x in t.labels]
    assert "other" not in labels and labels.count("deduction") > len(labels) / 2


# ------------------------------------------------------------------------- agreement


def test_agreement_matches_scikit_learn_and_brackets_the_point() -> None:
    rng = np.random.default_rng(0)
    labels = ["deduction", "initializing", "backtracking"]
    gold = list(rng.choice(labels, 300, p=[0.6, 0.3, 0.1]))
    pred = [g if rng.random() < 0.7 else str(rng.choice(labels)) for g in gold]
    groups = [k // 10 for k in range(300)]
    a = agreement(gold, pred, groups=groups, n_boot=300)
    assert a.accuracy == pytest.approx(accuracy_score(gold, pred))
    assert a.kappa == pytest.approx(cohen_kappa_score(gold, pred))
    assert a.macro_f1 == pytest.approx(f1_score(gold, pred, average="macro"))
    assert a.majority_label == "deduction"
    assert a.majority_accuracy == pytest.approx(gold.count("deduction") / 300)
    assert a.n_traces == 30 and sum(map(sum, a.confusion)) == 300
    for name in ("accuracy", "macro_f1", "kappa"):
        lo, hi = a.ci[name]
        assert lo <= getattr(a, name) <= hi and hi - lo < 0.3
    with pytest.raises(ValueError, match="pair them up"):
        agreement(gold, pred[:-1])


def test_evaluate_labels_each_trace_in_one_call_and_checks_counts() -> None:
    traces = read_annotated(DEV)[:4]
    calls: list[list[str]] = []

    def spy(batch: list[str]) -> list[str]:
        calls.append(batch)
        return ["deduction"] * len(batch)

    result = evaluate(spy, traces, n_boot=0)
    assert calls == [t.texts for t in traces]
    assert result.accuracy == pytest.approx(result.majority_accuracy)
    assert result.kappa == pytest.approx(0.0)
    with pytest.raises(ValueError, match=f"trace {traces[0].id}: the labeller returned 1 labels"):
        evaluate(lambda b: ["deduction"], traces)
    with pytest.raises(ValueError, match="no traces with split 'nope'"):
        evaluate(spy, DEV, split="nope")


# ----------------------------------------------------------------- trained labeller


@pytest.fixture(scope="module")
def fitted() -> TrainedLabeller:
    return TrainedLabeller.fit(DEV, split="tuning", folds=3, n_boot=50, verbose=False)


def test_trained_labeller_is_cross_validated_and_fits(fitted: TrainedLabeller) -> None:
    cv = fitted.cv
    assert cv is not None and cv["n_traces"] == 51 and 0 <= cv["kappa"] <= 1
    assert cv["accuracy"] > cv["majority_accuracy"]  # beats always answering deduction
    train = [t for t in read_annotated(DEV) if t.split == "tuning"]
    assert evaluate(fitted, train, n_boot=0).accuracy > 0.9


def test_trained_labeller_saves_loads_and_plugs_in(fitted: TrainedLabeller, tmp_path: Path) -> None:
    path = fitted.save(tmp_path / "labeller.joblib")
    loaded = TrainedLabeller.load(path)
    trace = read_annotated(DEV)[2]
    assert loaded(trace.texts) == fitted(trace.texts)
    assert loaded.cv == fitted.cv
    assert load_labeller(str(path))(trace.texts) == fitted(trace.texts)
    assert describe_labeller(loaded).startswith("trained")
    labelled = label_trace(f"<think>\n{trace.text}\n</think>\nThe answer is 2.", loaded)
    assert [x.label for x in labelled] == fitted([x.text for x in labelled])
    spans = MathTask("gsm8k", labeller=loaded).spans("Q: ", trace.text)
    assert len(spans) == len(labelled)
    (tmp_path / "junk.joblib").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="not a saved TrainedLabeller"):
        TrainedLabeller.load(tmp_path / "junk.joblib")


def test_trained_labeller_refuses_bad_inputs() -> None:
    one_label = [AnnotatedTrace("a", "So x.", ())]
    with pytest.raises(ValueError, match="two labels"):
        TrainedLabeller.fit(one_label, folds=0)
    with pytest.raises(ValueError, match="folds=99"):
        TrainedLabeller.fit(DEV, split="heldout", folds=99)
    with pytest.raises(ValueError, match="no annotated traces"):
        TrainedLabeller.fit(DEV, split="nope")


# ------------------------------------------------------------------ load_labeller


def test_load_labeller_specs(tmp_path: Path, model_dir) -> None:
    assert isinstance(load_labeller("rule"), RuleLabeller)
    assert describe_labeller(None) == "rule"
    llm = load_labeller(str(model_dir("llama")), cache_dir=tmp_path)
    assert describe_labeller(llm).startswith("llm")
    for bad, message in [
        ("rules", "neither 'rule'"),
        (str(tmp_path / "x.joblib"), "no fitted labeller"),
        (str(tmp_path), "without config.json"),
    ]:
        with pytest.raises(ValueError, match=message):
            load_labeller(bad)
