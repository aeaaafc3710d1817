"""Tests for think-block detection, sentence splitting and strategy labelling."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from rlvr.tasks import MathTask
from rlvr.text.labelling import evaluate
from rlvr.text.reasoning import (
    CATEGORIES,
    DEFAULT_RULES,
    LABELS,
    LabeledSentence,
    RuleLabeller,
    label_trace,
    segment_start_label,
    split_sentences,
    think_block,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "reasoning_sentences.jsonl"
DEV_TRACES = Path(__file__).resolve().parents[1] / "data" / "reasoning" / "dev_traces.json"


# ------------------------------------------------------------------------- think block


@pytest.mark.parametrize(
    ("text", "inside"),
    [
        ("<think>\nreason here\n</think>\nThe answer is 4.", "\nreason here\n"),
        ("reason here\n</think>\n\nThe answer is 4.", "reason here\n"),
        ("<think>truncated reasoning", "truncated reasoning"),
        ("no tags at all.", "no tags at all."),
        ("prefix <think>a</think> b </think>", "a"),
        ("<think></think>answer", ""),
    ],
)
def test_think_block(text: str, inside: str) -> None:
    start, end = think_block(text)
    assert text[start:end] == inside


def test_think_block_rejects_non_text() -> None:
    with pytest.raises(TypeError, match="str"):
        think_block(b"<think>x</think>")  # type: ignore[arg-type]


# ------------------------------------------------------------------ sentence splitting


def _texts(text: str, start: int = 0, end: int | None = None) -> list[str]:
    sentences = split_sentences(text, start, end)
    for s in sentences:
        assert text[s.start : s.end] == s.text
        assert s.text == s.text.strip() and s.text
    return [s.text for s in sentences]


def test_split_keeps_decimals_abbreviations_and_math_together() -> None:
    text = (
        "The radius is 3.14 cm, e.g. a coin. We know that $A = \\pi r^2. B$ holds. "
        "Then \\(x = 2. Y\\) is fine. Dr. Smith agrees, i.e. Yes. Done!"
    )
    assert _texts(text) == [
        "The radius is 3.14 cm, e.g. a coin.",
        "We know that $A = \\pi r^2. B$ holds.",
        "Then \\(x = 2. Y\\) is fine.",
        "Dr. Smith agrees, i.e. Yes.",
        "Done!",
    ]


def test_split_on_lines_and_paragraphs_but_not_inside_display_math() -> None:
    text = (
        "So we have:\n\n\\[\nx = 2.\nY = 3\n\\]\n\nThus x is 2.  Wait? Hmm... Maybe not. No. Fine"
    )
    assert _texts(text) == [
        "So we have:",
        "\\[\nx = 2.\nY = 3\n\\]",
        "Thus x is 2.",
        "Wait?",
        "Hmm...",
        "Maybe not.",
        "No.",
        "Fine",
    ]


def test_split_strips_list_markers_and_drops_empty_pieces() -> None:
    text = "Steps:\n1. First, add. Then halve.\n2) Check it.\n- Bullet here\n(a) Part a\n---\n### Heading"
    assert _texts(text) == [
        "Steps:",
        "First, add.",
        "Then halve.",
        "Check it.",
        "Bullet here",
        "Part a",
        "Heading",
    ]


def test_split_currency_dollars_are_not_math() -> None:
    assert _texts("It costs $5. Then $10 more. Total $15.") == [
        "It costs $5.",
        "Then $10 more.",
        "Total $15.",
    ]


def test_split_respects_range_and_offsets() -> None:
    text = "<think>\nOkay. So x = 1.\n</think>\nAnswer: 1."
    start, end = think_block(text)
    sentences = split_sentences(text, start, end)
    assert [s.text for s in sentences] == ["Okay.", "So x = 1."]
    assert sentences[1].start == text.index("So x")
    assert split_sentences("   \n\n  ") == []


def test_split_rejects_bad_ranges() -> None:
    with pytest.raises(ValueError, match="start <= end"):
        split_sentences("abc", 2, 1)
    with pytest.raises(ValueError, match="len"):
        split_sentences("abc", 0, 10)
    with pytest.raises(TypeError):
        split_sentences(None)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- rule labeller


@pytest.mark.parametrize(
    ("sentence", "label"),
    [
        # hedged reasoning is deduction
        ("Maybe I can factor the left side as (x - 2)(x + 3).", "deduction"),
        ("I think the total is 3 + 4 = 7 apples.", "deduction"),
        ("So 3 + 4 = 7 apples in all.", "deduction"),
        ("Therefore the total is 42.", "deduction"),
        # uncertainty is a statement about confidence or the state of the solution
        ("I'm not sure this is right.", "uncertainty-estimation"),
        ("Hmm, that seems too big.", "uncertainty-estimation"),
        ("Wait, is the question asking for the area or the perimeter?", "uncertainty-estimation"),
        ("Wait, let me double check the remainder.", "uncertainty-estimation"),
        # backtracking abandons or revises a step or approach; "Wait" alone is not enough
        ("Wait, that's not right.", "backtracking"),
        ("But wait, I forgot the tax.", "backtracking"),
        ("Wait, no, the diameter is the diagonal of the square, not its side.", "backtracking"),
        ("Alternatively, we could count the complement.", "backtracking"),
        ("Actually, it might be cleaner to call the middle one m.", "backtracking"),
        ("Wait, 2^3 = 8, which is 1 mod 7.", "deduction"),
        # example-testing without "check" or "verify"
        ("Let me check with n = 2: the sum is 3, and the formula gives 3.", "example-testing"),
        ("Plugging x = 8 back in: 3(6) + 5 = 23.", "example-testing"),
        ("As a sanity check on a smaller range, take the numbers below 20.", "example-testing"),
        ("Let me try a small case, with 3 people.", "example-testing"),
        ("Let me try n = 3.", "example-testing"),
        ("But let me think again.", "backtracking"),
        # adding-knowledge is recall
        ("Recall that the area of a circle is pi r squared.", "adding-knowledge"),
        ("The area of a circle is πr^2.", "adding-knowledge"),
        ("By Vieta's formulas, the sum of the roots is -p.", "adding-knowledge"),
        ("Consecutive odd integers differ by 2.", "adding-knowledge"),
        ("By definition, a square has four equal sides.", "adding-knowledge"),
    ],
)
def test_rule_labeller_semantics(sentence: str, label: str) -> None:
    assert RuleLabeller().label(sentence) == label


def test_rule_labeller_opening_is_initializing_then_stops() -> None:
    trace = [
        "Okay, so I need to find the remainder when 2^100 is divided by 7.",
        "Computing it directly is out of the question, so I should look for a pattern.",
        "2^3 = 8, which is 1 mod 7.",
        "I need to be careful with the exponent.",
    ]
    assert RuleLabeller()(trace)[:3] == ["initializing", "initializing", "deduction"]
    assert RuleLabeller()(trace)[3] != "initializing"  # the opening is over
    assert RuleLabeller(opening_limit=1)(trace)[1] == "deduction"


def test_rule_labeller_check_continuation_uses_the_previous_label() -> None:
    trace = ["Let me plug x = 8 back into the equation.", "Left side: 3 times 6 + 5 = 23."]
    opening = ["Okay, so we need x.", "Then 2x = 16, so x = 8."]
    assert RuleLabeller()([*opening, *trace]) == [
        "initializing",
        "deduction",
        "example-testing",
        "example-testing",
    ]
    bare = "The sum: 2 times 8 + 7 = 23."
    assert RuleLabeller().label(bare, 5, "example-testing") == "example-testing"
    assert RuleLabeller().label(bare, 5, "deduction") == "deduction"
    assert RuleLabeller().label("So 2 times 8 + 7 = 23.", 5, "example-testing") == "deduction"


def test_rule_labeller_uses_six_labels_unless_other_is_asked_for() -> None:
    fillers = ["Hmm.", "Okay.", "**Final Answer**", "Qwerty."]
    assert all(lab in CATEGORIES for lab in RuleLabeller()(fillers))
    with_other = RuleLabeller(allow_other=True)
    assert with_other(fillers[:3]) == ["other"] * 3
    assert with_other.label("Qwerty.", 3, "deduction") == "deduction"


def test_rule_labeller_is_inspectable_and_extensible() -> None:
    labeller = RuleLabeller()
    assert labeller.rules == DEFAULT_RULES
    label, why = labeller.explain("Alternatively, use symmetry.")
    assert label == "backtracking" and "alternatively" in why
    assert labeller.explain("Qwerty.") == ("deduction", "default")
    assert labeller.explain("Okay, let's see.", 0) == ("initializing", "opening")
    custom = labeller.with_rules([("adding-knowledge", re.compile(r"\bqwerty\b", re.I))])
    assert custom.label("Qwerty.") == "adding-knowledge"
    assert labeller.label("Qwerty.") == "deduction"  # the original is unchanged
    assert RuleLabeller(rules=(), default="uncertainty-estimation")(
        ["Wait, no."],
    ) == ["initializing"]
    assert RuleLabeller(rules=(), default="uncertainty-estimation").label("Wait, no.") == (
        "uncertainty-estimation"
    )


def test_rule_labeller_rejects_bad_rules() -> None:
    with pytest.raises(ValueError, match="unknown label"):
        RuleLabeller(rules=(("rethinking", re.compile("x")),))
    with pytest.raises(TypeError, match="re.compile"):
        RuleLabeller(rules=(("deduction", r"^so\b"),))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="default"):
        RuleLabeller(default="none")
    with pytest.raises(ValueError, match="allow_other"):
        RuleLabeller(default="other")
    with pytest.raises(ValueError, match="opening_limit"):
        RuleLabeller(opening_limit=-1)
    with pytest.raises(TypeError, match="list"):
        RuleLabeller()("Wait.")  # type: ignore[arg-type]


# ------------------------------------------------------------------------ label_trace

TRACE = (
    "Okay, so the problem asks for 15% of 80.\n"
    "We know that 10% of 80 is 8. So 15% is 8 + 4 = 12.\n"
    "Wait, let me re-check that.\n"
    "Let me verify: 0.15 \\times 80 = 12.\n"
    "</think>\n"
    "The answer is \\boxed{12}."
)


def test_label_trace_default_labeller() -> None:
    labelled = label_trace(TRACE)
    assert all(isinstance(x, LabeledSentence) for x in labelled)
    assert all(TRACE[x.start : x.end] == x.text for x in labelled)
    assert [x.label for x in labelled] == [
        "initializing",
        "adding-knowledge",
        "deduction",
        "uncertainty-estimation",
        "example-testing",
    ]
    assert all(x.end <= TRACE.index("</think>") for x in labelled)


def test_label_trace_accepts_any_callable() -> None:
    seen: list[list[str]] = []

    def by_length(sentences: list[str]) -> list[str]:
        seen.append(sentences)
        return ["deduction" if len(s) > 30 else "other" for s in sentences]

    labelled = label_trace(TRACE, by_length)
    assert len(seen) == 1 and len(seen[0]) == len(labelled)
    assert [x.label for x in labelled][:2] == ["deduction", "other"]
    clusters = label_trace(TRACE, lambda b: ["c0"] * len(b), labels=("c0", "c1"))
    assert {x.label for x in clusters} == {"c0"}


def test_label_trace_rejects_bad_labeller_output() -> None:
    with pytest.raises(ValueError, match="returned 1 labels for 5 sentences"):
        label_trace(TRACE, lambda b: ["other"])
    with pytest.raises(ValueError, match="unknown label 'thinking'"):
        label_trace(TRACE, lambda b: ["thinking"] * len(b))
    with pytest.raises(TypeError, match="one label str per input"):
        label_trace(TRACE, lambda b: "other")
    with pytest.raises(TypeError, match="callable"):
        label_trace(TRACE, "other")  # type: ignore[arg-type]
    assert label_trace("<think>\n\n</think>", lambda b: 1 / 0) == []


# -------------------------------------------------------------- segment_start_label


@pytest.mark.parametrize(
    ("prefix", "token", "expected"),
    [
        ("So x = 3.", " Wait", "backtracking"),
        ("So x = 3. ", "Wait", "backtracking"),
        ("So x = 3.\n\n", "Alternatively", "backtracking"),
        ("Thus y = 2.", "\nMaybe", "deduction"),
        ("<think>\n", "So", "initializing"),  # the first sentence of the think block
        ("", "Okay", "initializing"),
        ("So x = 3.\n", "Recall", "adding-knowledge"),
        ("So x = 3. ", "Check", "example-testing"),
        ("Steps:\n1.", " Wait", "backtracking"),
        ("So x = 3", " Wait", None),  # no sentence end before the token
        ("So x = 3. W", "ait", None),  # continues a word
        ("So x = 3.\n\n", "\n", None),  # whitespace-only token
        ("Consider e.g.", " Alice", None),  # abbreviation
        ("We have \\(x = 3.", " Then", None),  # inside unfinished math
        ("It is $3.", " Then", None),  # inside unfinished $ math
        ("so x = 3.", " then", None),  # lower-case continuation
    ],
)
def test_segment_start_label(prefix: str, token: str, expected: str | None) -> None:
    assert segment_start_label(prefix, token) == expected


def test_segment_start_label_agrees_with_split_sentences() -> None:
    text = "Okay. So x = 3.14, e.g. pi. Wait, no.\nMaybe 3. Then $y = 2. Z$ works."
    starts = {s.start for s in split_sentences(text)}
    words = [m.start() for m in re.finditer(r"\S+", text)]
    for k in words:
        fired = segment_start_label(text[:k], text[k:].split(" ")[0]) is not None
        assert fired == (k in starts), text[:k]


def test_segment_start_label_uses_custom_labeller_and_only_the_tail() -> None:
    calls: list[list[str]] = []

    def spy(batch: list[str]) -> list[str]:
        calls.append(batch)
        return ["other"] * len(batch)

    long_prefix = "x " * 50_000 + "done."
    assert segment_start_label(long_prefix, " Wait", spy) == "other"
    assert calls == [["Wait"]]
    with pytest.raises(ValueError, match="unknown label"):
        segment_start_label("", "Wait", lambda b: ["pause"])
    with pytest.raises(TypeError, match="str"):
        segment_start_label("", 5)  # type: ignore[arg-type]


# ----------------------------------------------------------------- labelled data set


def test_labelled_sentences_file_is_valid_and_balanced() -> None:
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line]
    assert len(rows) >= 140
    assert all(set(row) >= {"text", "label"} and row["label"] in LABELS for row in rows)
    counts = Counter(row["label"] for row in rows)
    assert all(counts[label] >= 12 for label in LABELS), counts
    texts = [row["text"] for row in rows]
    assert len(set(texts)) == len(texts)


def test_rule_labeller_beats_majority_baseline_on_heldout_traces() -> None:
    result = evaluate(RuleLabeller(), DEV_TRACES, split="heldout", n_boot=0)
    assert result.n_traces >= 20 and result.n_sentences >= 250
    assert result.accuracy >= 0.60 and result.kappa >= 0.40
    assert result.accuracy > result.majority_accuracy + 0.15


# ---------------------------------------------------------------- MathTask.can_begin


@pytest.mark.parametrize(
    ("prefix", "eligible"),
    [
        ("", True),
        ("<think>\n", True),
        ("So x = 3.", True),
        ("So x = 3. ", True),
        ("So x = 3.\n\n", True),
        ("So x = 3", False),
        ("So x = 3. W", False),
        ("Consider e.g.", False),
        ("We have \\(x = 3.", False),
    ],
)
def test_math_task_can_begin(prefix: str, eligible: bool) -> None:
    task = MathTask("gsm8k")
    assert task.can_begin(prefix) == (frozenset(CATEGORIES) if eligible else frozenset())
    # wherever a label is eligible, segment_start fires for some capitalised token
    fired = task.segment_start(prefix, "Wait") or task.segment_start(prefix, " Wait")
    assert (fired is not None) == eligible
