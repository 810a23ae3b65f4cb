"""Tiny random GPT-2 and Llama repos (a few thousand parameters) for the Hub stand-in.

Each repo holds what ``save_pretrained`` writes (``config.json``, ``generation_config.json``,
``model.safetensors``) and a byte-level BPE tokenizer trained here on a few sentences
(``tokenizer.json``, ``tokenizer_config.json``): GPT-2's ends documents with ``<|endoftext|>``,
Llama's with ``</s>``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

GPT2_REPO = "research-test/tiny-gpt2"
LLAMA_REPO = "research-test/tiny-llama"
SENTENCES = [
    "Once upon a time there was a little girl named Lily.",
    "One day, Tom and his dog went to the park to play with a big red ball.",
    "The cat was very happy and the sun was warm. They laughed and ran home.",
    "She found a shiny stone, and her mom said it was beautiful.",
]


def _tokenizer(specials: list[str], vocab_size: int) -> object:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(SENTENCES * 4, trainer=trainer)
    return tok


def repo_files(kind: str) -> dict[str, bytes | str | None]:
    """The files of the tiny ``gpt2`` or ``llama`` repo."""
    import torch
    from transformers import (
        GPT2Config,
        GPT2LMHeadModel,
        LlamaConfig,
        LlamaForCausalLM,
        PreTrainedTokenizerFast,
    )

    torch.manual_seed(0)
    if kind == "gpt2":
        backend = _tokenizer(["<|endoftext|>"], 300)
        vocab = backend.get_vocab_size()  # type: ignore[attr-defined]
        config = GPT2Config(
            vocab_size=vocab, n_positions=128, n_embd=16, n_layer=2, n_head=2,
            bos_token_id=0, eos_token_id=0,
        )  # fmt: skip
        model = GPT2LMHeadModel(config)
        tokenizer = PreTrainedTokenizerFast(
            tokenizer_object=backend, eos_token="<|endoftext|>", bos_token="<|endoftext|>"
        )
    else:
        backend = _tokenizer(["<s>", "</s>"], 300)
        vocab = backend.get_vocab_size()  # type: ignore[attr-defined]
        config = LlamaConfig(
            vocab_size=vocab, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
            num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=128,
            bos_token_id=0, eos_token_id=1, tie_word_embeddings=False,
        )  # fmt: skip
        model = LlamaForCausalLM(config)
        tokenizer = PreTrainedTokenizerFast(
            tokenizer_object=backend, eos_token="</s>", bos_token="<s>"
        )
    files: dict[str, bytes | str | None] = {}
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        for path in Path(tmp).iterdir():
            files[path.name] = path.read_bytes()
    files["README.md"] = f"# tiny random {kind} (test fixture)\n"
    files[".gitattributes"] = "*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
    return files
