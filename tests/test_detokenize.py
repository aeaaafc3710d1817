import pytest
from conftest import char_tokenizer

from rlvr.generation.detokenize import IncrementalText, StopTexts, plain_decoder, token_pieces


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


def test_a_character_tokenizer_decodes_by_table_lookup():
    tok = char_tokenizer()
    pieces = token_pieces(tok)
    assert pieces is not None and len(pieces) == len(tok)
    assert pieces[tok.eos_token_id] == "" and pieces[tok.convert_tokens_to_ids("a")] == "a"
    assert token_pieces(_byte_bpe()) is None  # bytes straddle tokens: no table

    calls = []
    decode = plain_decoder(tok)
    assert decode.pieces == pieces

    def counting(ids):
        calls.append(list(ids))
        return decode(ids)

    counting.pieces = pieces
    ids = tok.encode("the cat sat on 12 mats", add_special_tokens=False)
    inc = IncrementalText(counting, ids[:3])
    calls.clear()
    for t in ids[3:]:
        inc.append(t)
    assert calls == [] and inc.text == decode(ids) == "the cat sat on 12 mats"
    assert inc.next_text(len(pieces) + 5) == ""  # beyond the table: decoded (unknown: nothing)
    assert calls


def test_a_tokenizer_that_cleans_up_spaces_has_no_table():
    tok = char_tokenizer()
    tok.clean_up_tokenization_spaces = True
    assert token_pieces(tok) is None and plain_decoder(tok).pieces is None


@pytest.mark.parametrize(
    "make, text, stops",
    [
        (_byte_bpe, "the café sat 🐈 on the mat; check ünïcödé again", ["🐈 o", "ün", "zz"]),
        (_byte_bpe, "the café sat 🐈 on the mat", ["é s"]),
        (char_tokenizer, "the cat sat on 12 mats, check again", ["12 m", "zz"]),
        (char_tokenizer, "the cat sat on 12 mats, check again", ["ck a"]),
    ],
)
def test_stop_texts_finds_a_stop_string_at_the_token_that_completes_it(make, text, stops):
    tok = make()
    decode = plain_decoder(tok)
    ids = tok.encode(text, add_special_tokens=False)
    watch = StopTexts(decode, 2, stops)
    first = next(i for i in range(len(ids)) if any(s in decode(ids[: i + 1]) for s in stops))
    for i, t in enumerate(ids[: first + 1]):  # the loop stops a row at its first True
        assert watch.add(1, t) == (i == first)
        assert watch.texts[1].text == decode(ids[: i + 1])
    assert watch.texts[0].text == "" and watch.texts[0].ids == []


def test_stop_texts_refuses_no_or_empty_stop_strings():
    with pytest.raises(ValueError, match="stop string"):
        StopTexts(plain_decoder(char_tokenizer()), 1, [])
    with pytest.raises(ValueError, match="stop string"):
        StopTexts(plain_decoder(char_tokenizer()), 1, ["a", ""])


def test_kept_is_the_unchanged_part_of_the_text():
    tok = _byte_bpe()
    decode = plain_decoder(tok)
    ids = tok.encode("a 🐈 b", add_special_tokens=False)
    inc = IncrementalText(decode, ids[:1])
    for i, t in enumerate(ids[1:], start=2):
        before = inc.text
        inc.append(t)
        k = inc.kept
        assert inc.text[:k] == before[:k] and inc.text == decode(ids[:i])
        assert k == len(before) or before[k:] != inc.text[k : len(before)]
