"""Tests for the LLM labeller: parsing, re-asking, caching and refusals (not quality)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from rlvr.text.labelling.llm import (
    INSTRUCTIONS,
    LabellingError,
    LLMLabeller,
    build_prompt,
    parse_labels,
)

SENTENCES = ["Okay, so we need x.", "So x = 3.", "Wait, is that right?"]
GOOD = "1: initializing\n2: deduction\n3: uncertainty-estimation\n"


class FakeModel:
    """A generate function that answers from a script and records the prompts."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.prompts: list[list[str]] = []

    def __call__(self, prompts: list[str], max_new_tokens: int) -> list[str]:
        self.prompts.append(prompts)
        return [self.answers.pop(0) for _ in prompts]


def test_prompt_numbers_sentences_and_defines_all_six() -> None:
    prompt = build_prompt(["First  line\nwrapped.", "Second."])
    assert prompt.startswith(INSTRUCTIONS)
    assert "[1] First line wrapped.\n[2] Second." in prompt
    for label in ("initializing", "adding-knowledge", "example-testing", "backtracking"):
        assert f"{label}:" in INSTRUCTIONS
    assert "sentence(s) 2, 5" in build_prompt(["a"], missing=[2, 5])


@pytest.mark.parametrize(
    "answer",
    [
        GOOD,
        "Sure!\n[1]: Initializing\n[2] - deduction (a computation)\n3. **Uncertainty**",
        'Sentence 1: "initializing"\nSentence 2: Deduction\nSentence 3: uncertainty estimation',
        "<think>\n1: backtracking? no...\n</think>\n" + GOOD,
    ],
)
def test_parse_labels_is_lenient_about_format(answer: str) -> None:
    labels, problems = parse_labels(answer, 3)
    assert labels == ["initializing", "deduction", "uncertainty-estimation"]
    assert problems == []


def test_parse_labels_reports_what_is_wrong() -> None:
    labels, problems = parse_labels("1: deduction\n2: pondering\n7: deduction\n1: backtracking", 3)
    assert labels == [None, None, None]
    joined = " | ".join(problems)
    assert "unknown label 'pondering'" in joined and "out of range" in joined
    assert "two labels" in joined and "sentence 3: no label" in joined


def test_llm_labeller_labels_and_caches(tmp_path: Path) -> None:
    fake = FakeModel(GOOD)
    labeller = LLMLabeller("m1", generate=fake, cache_dir=tmp_path)
    assert labeller(SENTENCES) == ["initializing", "deduction", "uncertainty-estimation"]
    assert labeller(SENTENCES) == ["initializing", "deduction", "uncertainty-estimation"]
    assert len(fake.prompts) == 1  # the second call came from the cache
    (entry,) = tmp_path.glob("*.json")
    assert json.loads(entry.read_text())["answers"] == [GOOD]
    other_model = FakeModel(GOOD)
    LLMLabeller("m2", generate=other_model, cache_dir=tmp_path)(SENTENCES)
    assert len(other_model.prompts) == 1  # another model is another cache key
    changed = FakeModel("1: deduction\n2: deduction\n3: deduction")
    LLMLabeller("m1", generate=changed, cache_dir=tmp_path)(SENTENCES[:2] + ["Hmm."])
    assert len(changed.prompts) == 1  # another trace too
    assert LLMLabeller("m1", generate=FakeModel())([]) == []


def test_llm_labeller_batches_traces_and_reasks_only_the_incomplete() -> None:
    fake = FakeModel(GOOD, "1: deduction\n2: bogus", "2: backtracking")
    labeller = LLMLabeller("m", generate=fake)
    out = labeller.label_traces([SENTENCES, ["So y = 2.", "Wait, no, y = 3."]])
    assert out == [
        ["initializing", "deduction", "uncertainty-estimation"],
        ["deduction", "backtracking"],
    ]
    assert [len(p) for p in fake.prompts] == [2, 1]
    assert "no valid label for sentence(s) 2" in fake.prompts[1][0]


def test_evaluate_batches_an_llm_labeller(tmp_path: Path) -> None:
    from rlvr.text.labelling import AnnotatedTrace, evaluate
    from rlvr.text.labelling.labels import LabeledSentence

    traces = [
        AnnotatedTrace(f"t{k}", "So x = 3.", (LabeledSentence(0, 9, "So x = 3.", "deduction"),))
        for k in range(3)
    ]
    fake = FakeModel("1: deduction", "1: deduction", "1: backtracking")
    result = evaluate(LLMLabeller("m", generate=fake), traces, n_boot=0)
    assert [len(p) for p in fake.prompts] == [3]  # one batch for all traces
    assert result.accuracy == pytest.approx(2 / 3)


def test_llm_labeller_reports_rather_than_guesses(tmp_path: Path) -> None:
    refusal = "I'm sorry, I can't help with that."
    with pytest.raises(LabellingError, match=r"sentence\(s\) \[1, 2, 3\] after one re-ask"):
        LLMLabeller("m", generate=FakeModel(refusal, refusal), cache_dir=tmp_path)(SENTENCES)
    labeller = LLMLabeller(
        "m", generate=FakeModel(refusal, "1: deduction"), cache_dir=tmp_path, on_failure="other"
    )
    assert labeller(SENTENCES) == ["deduction", "other", "other"]
    assert labeller.failures[0].sentences == [2, 3]
    assert list(tmp_path.glob("*.json")) == []  # incomplete answers are never cached
    with pytest.raises(ValueError, match="one completion per prompt"):
        LLMLabeller("m", generate=lambda prompts, n: [])(SENTENCES)
    with pytest.raises(ValueError, match="on_failure"):
        LLMLabeller("m", generate=FakeModel(), on_failure="guess")
    with pytest.raises(ValueError, match="model_name"):
        LLMLabeller(object(), generate=FakeModel())


def test_llm_labeller_end_to_end_through_the_sampler(tmp_path: Path) -> None:
    """A random tiny Llama cannot answer: the labeller asks, re-asks, then reports."""
    from conftest import CHARS, char_tokenizer
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=4 + len(CHARS),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    path = tmp_path / "tiny"
    LlamaForCausalLM(cfg).eval().save_pretrained(path)
    char_tokenizer().save_pretrained(path)
    labeller = LLMLabeller(str(path), cache_dir=tmp_path / "cache", tokens_per_sentence=2)
    with pytest.raises(LabellingError, match="after one re-ask"):
        labeller(SENTENCES[:2])
    assert labeller.calls == 2
    labeller.on_failure = "other"
    assert labeller(SENTENCES[:2]) == ["other", "other"]
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").glob("*.json"))
