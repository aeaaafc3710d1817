"""A character-level tokenizer for the organism, saved beside the model.

One token per character (a WordLevel model over single characters, a pre-tokenizer that
splits every character off, a ``Fuse`` decoder) wrapped in ``PreTrainedTokenizerFast``
with ``<pad>``/``<bos>``/``<eos>``/``<unk>``. A post-processor prepends ``<bos>`` so every
position of a prompt has a predecessor. ``AutoTokenizer.from_pretrained`` loads it from
disk with character offsets, so nnsight and TransformerLens can use it too.
"""

from __future__ import annotations

import string

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

__all__ = ["SPECIALS", "VOCAB_CHARS", "build_tokenizer", "vocab"]

SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
VOCAB_CHARS = string.ascii_lowercase + string.ascii_uppercase + string.digits + ":?=."


def vocab() -> dict[str, int]:
    """Token -> id: the four specials, then one id per character of ``VOCAB_CHARS``."""
    items = list(SPECIALS) + list(VOCAB_CHARS)
    return {tok: i for i, tok in enumerate(items)}


def build_tokenizer(padding_side: str = "left"):
    """The organism's ``PreTrainedTokenizerFast`` (ids fixed by :func:`vocab`)."""
    from transformers import PreTrainedTokenizerFast

    if padding_side not in ("left", "right"):
        raise ValueError(f"padding_side={padding_side!r}: use 'left' or 'right'")
    v = vocab()
    tok = Tokenizer(models.WordLevel(v, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(pattern="", behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", v["<bos>"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        padding_side=padding_side,
        model_max_length=256,
        clean_up_tokenization_spaces=False,
    )
