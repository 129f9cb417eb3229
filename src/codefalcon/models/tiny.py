"""The tiny from-scratch model: a byte-level BPE tokenizer trained on Python source plus a small
randomly initialised transformer, saved as a plain Hugging Face folder.

It exists so that tests, CI and the quick demo exercise the real code paths (tokenize, generate,
compute log-probs, train, save, reload) in seconds on a CPU with nothing downloaded. Its outputs
are noise until trained; nothing here pretends otherwise.
"""

from __future__ import annotations

import sysconfig
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import torch

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerFast

TinyArch = Literal["gpt2", "llama", "t5"]

EOS_TOKEN = "<|endoftext|>"
PAD_TOKEN = "<|pad|>"

# Stdlib folders left out of the default corpus: tests are huge and repetitive, and the rest are
# vendored or legacy code that would skew the vocabulary.
_SKIPPED_STDLIB_DIRS = frozenset(
    {"test", "tests", "idlelib", "lib2to3", "site-packages", "dist-packages", "turtledemo"}
)


@dataclass(frozen=True)
class TinyModelInfo:
    """What `build_tiny_model` produced."""

    out_dir: Path
    n_params: int
    vocab_size: int
    n_source_files: int
    n_source_bytes: int


def default_source_files(max_bytes: int = 2_000_000) -> list[Path]:
    """A deterministic sample of the standard library's ``.py`` files, about ``max_bytes`` total.

    Files are sorted by path relative to the stdlib root and taken at an even stride, so the
    sample spreads over the whole library and is the same on every run of the same Python.
    """
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(
        (p for p in root.rglob("*.py") if not _SKIPPED_STDLIB_DIRS & set(p.relative_to(root).parts)),
        key=lambda p: p.relative_to(root).as_posix(),
    )
    sizes = [p.stat().st_size for p in files]
    total = sum(sizes)
    stride = max(1, round(total / max_bytes)) if total else 1
    return files[::stride]


def build_tiny_model(
    out_dir: str | Path,
    source_files: Sequence[str | Path] | None = None,
    vocab_size: int = 8000,
    n_layer: int = 4,
    n_embd: int = 256,
    n_head: int = 4,
    n_positions: int = 512,
    seed: int = 0,
    arch: TinyArch = "gpt2",
) -> TinyModelInfo:
    """Train a BPE tokenizer on Python source, build a random-init model, save both to ``out_dir``.

    The folder reloads with plain ``AutoModelForCausalLM.from_pretrained(out_dir)`` (or
    ``AutoModelForSeq2SeqLM`` for ``arch="t5"``) and ``AutoTokenizer.from_pretrained(out_dir)``.
    ``vocab_size`` is an upper bound: a small corpus may yield fewer merges. The same files and
    seed give the same tokenizer and weights; the caller's torch RNG state is left untouched.
    With the defaults (stdlib sample, 4 layers x 256) this takes a few seconds and gives a
    GPT-2 of about 5 M parameters.
    """
    from transformers import GenerationConfig

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [Path(p) for p in source_files] if source_files is not None else default_source_files()
    if not paths:
        raise ValueError("build_tiny_model needs at least one source file")
    n_bytes = sum(p.stat().st_size for p in paths)
    tokenizer = train_code_tokenizer(paths, vocab_size, model_max_length=n_positions)
    eos_id = tokenizer.convert_tokens_to_ids(EOS_TOKEN)
    pad_id = tokenizer.convert_tokens_to_ids(PAD_TOKEN)
    config = _tiny_config(arch, len(tokenizer), n_layer, n_embd, n_head, n_positions, eos_id, pad_id)
    model = _init_model(config, arch, seed)
    model.generation_config = GenerationConfig(
        eos_token_id=eos_id,
        pad_token_id=pad_id,
        bos_token_id=eos_id,
        decoder_start_token_id=pad_id if arch == "t5" else None,
    )
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    n_params = sum(p.numel() for p in model.parameters())
    return TinyModelInfo(out, n_params, len(tokenizer), len(paths), n_bytes)


def train_code_tokenizer(
    source_files: Sequence[Path], vocab_size: int, model_max_length: int = 512
) -> PreTrainedTokenizerFast:
    """A GPT-2 style byte-level BPE trained on the files, wrapped for ``save_pretrained``.

    Byte-level means every string round-trips (no unknown token), which the program extractor
    relies on: decoded completions keep their exact whitespace and indentation.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS_TOKEN, PAD_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_read_texts(source_files), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token=EOS_TOKEN,
        bos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        model_max_length=model_max_length,
        clean_up_tokenization_spaces=False,
    )


def _read_texts(paths: Sequence[Path]) -> Iterator[str]:
    """File contents as text; undecodable bytes are replaced rather than failing the build."""
    for path in paths:
        yield path.read_text(encoding="utf-8", errors="replace")


def _tiny_config(
    arch: TinyArch,
    vocab: int,
    n_layer: int,
    n_embd: int,
    n_head: int,
    n_positions: int,
    eos_id: int,
    pad_id: int,
) -> PretrainedConfig:
    """The transformers config for one of the tiny architectures."""
    from transformers import GPT2Config, LlamaConfig, T5Config

    if n_embd % n_head:
        raise ValueError(f"n_embd ({n_embd}) must be divisible by n_head ({n_head})")
    special = {"eos_token_id": eos_id, "pad_token_id": pad_id}
    if arch == "gpt2":
        return GPT2Config(
            vocab_size=vocab, n_positions=n_positions, n_embd=n_embd, n_layer=n_layer,
            n_head=n_head, bos_token_id=eos_id, **special,
        )  # fmt: skip
    if arch == "llama":
        return LlamaConfig(
            vocab_size=vocab, hidden_size=n_embd, intermediate_size=4 * n_embd,
            num_hidden_layers=n_layer, num_attention_heads=n_head, num_key_value_heads=n_head,
            max_position_embeddings=n_positions, tie_word_embeddings=True, bos_token_id=eos_id,
            **special,
        )  # fmt: skip
    if arch == "t5":
        return T5Config(
            vocab_size=vocab, d_model=n_embd, d_kv=n_embd // n_head, d_ff=4 * n_embd,
            num_layers=n_layer, num_decoder_layers=n_layer, num_heads=n_head,
            decoder_start_token_id=pad_id, **special,
        )  # fmt: skip
    raise ValueError(f"unknown tiny architecture {arch!r}; choose gpt2, llama or t5")


def _init_model(config: PretrainedConfig, arch: TinyArch, seed: int) -> PreTrainedModel:
    """Random-init weights from ``seed`` without disturbing the caller's global RNG."""
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    auto = AutoModelForSeq2SeqLM if arch == "t5" else AutoModelForCausalLM
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return auto.from_config(config)
