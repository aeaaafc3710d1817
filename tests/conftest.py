"""Shared fixtures: tiny models built from configs, saved with a character tokenizer."""

from __future__ import annotations

import string

import pytest
import torch

CHARS = string.ascii_lowercase + string.digits + " =?.:>|,+-"


def char_tokenizer():
    """A character-level fast tokenizer (offsets, pad/bos/eos), built offline."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3}
    for c in CHARS:
        vocab[c] = len(vocab)
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Split(pattern="", behavior="isolated")
    tk.decoder = decoders.Fuse()
    tk.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tk,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
    )


def tiny_model(arch: str = "llama", n_layers: int = 3, d_model: int = 32, seed: int = 0):
    """A randomly initialised causal LM of a given architecture (no download)."""
    from transformers import (
        GPT2Config,
        GPT2LMHeadModel,
        LlamaConfig,
        LlamaForCausalLM,
        Qwen2Config,
        Qwen2ForCausalLM,
    )

    torch.manual_seed(seed)
    vocab = 4 + len(CHARS)
    if arch in ("llama", "qwen2"):
        config_cls, model_cls = {
            "llama": (LlamaConfig, LlamaForCausalLM),
            "qwen2": (Qwen2Config, Qwen2ForCausalLM),
        }[arch]
        cfg = config_cls(
            vocab_size=vocab,
            hidden_size=d_model,
            intermediate_size=2 * d_model,
            num_hidden_layers=n_layers,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=256,
            pad_token_id=0,
            bos_token_id=1,
            eos_token_id=2,
        )
        model = model_cls(cfg)
    elif arch == "gpt2":
        cfg = GPT2Config(
            vocab_size=vocab,
            n_embd=d_model,
            n_layer=n_layers,
            n_head=4,
            n_positions=256,
            pad_token_id=0,
            bos_token_id=1,
            eos_token_id=2,
        )
        model = GPT2LMHeadModel(cfg)
    else:
        raise ValueError(arch)
    return model.eval()


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    """Factory: save a tiny model + tokenizer to disk once per (arch, layers, seed)."""
    cache: dict = {}

    def make(arch: str = "llama", n_layers: int = 3, d_model: int = 32, seed: int = 0):
        key = (arch, n_layers, d_model, seed)
        if key not in cache:
            path = tmp_path_factory.mktemp(f"{arch}{n_layers}_{seed}")
            tiny_model(arch, n_layers, d_model, seed).save_pretrained(path)
            char_tokenizer().save_pretrained(path)
            cache[key] = path
        return cache[key]

    return make
