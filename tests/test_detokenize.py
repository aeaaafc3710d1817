import pytest
from conftest import char_tokenizer

from rlvr.detokenize import IncrementalText, plain_decoder


def _byte_bpe():
    """A byte-level BPE trained offline on a few words: multi-byte characters split into
    several tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<eos>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tk.train_from_iterator(["the cat sat on the mat", "check the step again"] * 20, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tk, eos_token="<eos>")


@pytest.mark.parametrize(
    "make, text",
    [
        (_byte_bpe, "the café sat 🐈 on the mat; check ünïcödé again"),
        (char_tokenizer, "the cat sat on 12 mats, check again"),
    ],
)
def test_incremental_text_matches_a_whole_decode_at_every_token(make, text):
    tok = make()
    decode = plain_decoder(tok)
    ids = tok.encode(text, add_special_tokens=False)
    assert len(ids) > IncrementalText.WINDOW + 4
    inc = IncrementalText(decode, ids[:2])
    assert inc.text == decode(ids[:2])
    for i in range(2, len(ids)):
        before, peek = inc.text, inc.next_text(ids[i])
        assert inc.append(ids[i]) == decode(ids[: i + 1]) == inc.text
        if "\ufffd" not in before + inc.text:
            assert before + peek == inc.text  # what next_text said the token adds
    assert inc.ids == ids and inc.text == text


def test_a_character_split_across_tokens_has_no_delta():
    tok = _byte_bpe()
    ids = tok.encode("a 🐈", add_special_tokens=False)
    first = next(i for i in range(len(ids)) if "\ufffd" in tok.decode(ids[: i + 1]))
    inc = IncrementalText(plain_decoder(tok), ids[: first + 1])
    assert inc.delta(ids[first + 1]) is None  # the window ends inside the character
    inc.append(ids[first + 1])
    assert inc.text == tok.decode(ids[: first + 2])


def test_special_tokens_are_left_out():
    tok = _byte_bpe()
    ids = tok.encode("the mat", add_special_tokens=False)
    inc = IncrementalText(plain_decoder(tok), ids)
    assert inc.next_text(tok.eos_token_id) == ""
    assert inc.append(tok.eos_token_id) == "the mat"
