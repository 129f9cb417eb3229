"""The tiny from-scratch model: builds fast, reloads with plain from_pretrained, is deterministic."""

from __future__ import annotations

import sysconfig
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer, GPT2LMHeadModel

from codefalcon.models.tiny import EOS_TOKEN, PAD_TOKEN, build_tiny_model, default_source_files


def test_reloads_with_plain_from_pretrained(tiny_dir: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    assert isinstance(model, GPT2LMHeadModel)
    assert (model.config.n_layer, model.config.n_embd, model.config.n_positions) == (2, 64, 256)
    assert tokenizer.eos_token == EOS_TOKEN and tokenizer.pad_token == PAD_TOKEN
    assert model.config.vocab_size == len(tokenizer) <= 1000
    assert model.generation_config.eos_token_id == tokenizer.eos_token_id


def test_byte_level_tokenizer_round_trips_code_exactly(tiny_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    code = 'def f(x):\n\tif x:  # café ✓\n        return "\\n"  \n\n'
    ids = tokenizer(code)["input_ids"]
    assert tokenizer.decode(ids) == code
    assert tokenizer.unk_token_id is None or tokenizer.unk_token_id not in ids


def test_same_files_and_seed_give_identical_models(tmp_path: Path, tiny_dir: Path, small_builder) -> None:
    again = small_builder(tmp_path / "again")
    assert (again / "tokenizer.json").read_text() == (tiny_dir / "tokenizer.json").read_text()
    first = AutoModelForCausalLM.from_pretrained(tiny_dir).state_dict()
    second = AutoModelForCausalLM.from_pretrained(again).state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_other_seed_gives_other_weights(tmp_path: Path, tiny_dir: Path, small_builder) -> None:
    other = small_builder(tmp_path / "other", seed=1)
    first = AutoModelForCausalLM.from_pretrained(tiny_dir).transformer.wte.weight
    second = AutoModelForCausalLM.from_pretrained(other).transformer.wte.weight
    assert not torch.equal(first, second)


def test_build_leaves_the_callers_rng_alone(tmp_path: Path, small_builder) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    small_builder(tmp_path / "rng")
    assert torch.equal(torch.rand(3), expected)


def test_t5_variant_reloads_as_seq2seq(tiny_t5_dir: Path) -> None:
    model = AutoModelForSeq2SeqLM.from_pretrained(tiny_t5_dir)
    assert model.config.is_encoder_decoder
    assert model.generation_config.decoder_start_token_id == model.config.pad_token_id


def test_llama_variant_builds(tmp_path: Path, small_sources: list[Path]) -> None:
    info = build_tiny_model(
        tmp_path / "llama", small_sources[:2], vocab_size=500, n_layer=1, n_embd=32, n_head=2,
        n_positions=64, arch="llama",
    )  # fmt: skip
    model = AutoModelForCausalLM.from_pretrained(info.out_dir)
    assert type(model).__name__ == "LlamaForCausalLM"
    assert info.n_params == sum(p.numel() for p in model.parameters())


def test_bad_shapes_are_rejected(tmp_path: Path, small_sources: list[Path]) -> None:
    with pytest.raises(ValueError, match="divisible"):
        build_tiny_model(tmp_path / "bad", small_sources[:1], vocab_size=400, n_embd=30, n_head=4)
    with pytest.raises(ValueError, match="at least one"):
        build_tiny_model(tmp_path / "empty", source_files=[])


def test_default_corpus_is_a_deterministic_stdlib_sample() -> None:
    files = default_source_files(max_bytes=300_000)
    root = Path(sysconfig.get_paths()["stdlib"])
    assert files == default_source_files(max_bytes=300_000)
    assert files and all(f.suffix == ".py" and f.is_relative_to(root) for f in files)
    assert not any("test" in f.relative_to(root).parts for f in files)
    total = sum(f.stat().st_size for f in files)
    assert 100_000 < total < 1_000_000  # about max_bytes, from an even stride
