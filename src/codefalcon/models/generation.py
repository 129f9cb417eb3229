"""Generation back-ends: the `GenerationBackend` protocol and its Hugging Face implementation.

A back-end turns prompt strings into completions; it knows nothing of tasks or programs. The HF
back-end samples ``n`` completions per prompt in rounds of at most ``batch_size`` sequences
(CodeRL's ``num_seqs`` / ``num_seqs_per_iter``) so memory stays bounded whatever ``n`` is, with
left padding for causal models, the KV cache on, stop sequences, and per-sample seeds (see
`codefalcon.models.decoding`). Another engine (vLLM) would implement the same protocol in its
own module that imports the engine lazily; none ships yet, so nothing here depends on one.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList

from codefalcon.models.decoding import SeededSampler, StopOnSequences, row_seed, truncate_at_stop
from codefalcon.models.loading import Policy, model_device


@dataclass(frozen=True)
class SamplingParams:
    """How to sample. ``temperature == 0`` means greedy decoding (top-k / top-p then unused)."""

    temperature: float = 0.8
    """Softmax temperature; 0 for greedy."""
    top_p: float = 0.95
    """Nucleus sampling: keep the smallest set of tokens with this much probability (1 = off)."""
    top_k: int = 0
    """Keep only the k most likely tokens (0 = off)."""
    max_new_tokens: int = 512
    """Generation budget per sample, in tokens."""
    stop: tuple[str, ...] = ()
    """Stop sequences: a sample ends at the first one and its text is cut before it."""
    seed: int = 0
    """Run seed; sample j of a prompt is seeded from (seed, prompt, j), not from batch order."""

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0 (0 = greedy), got {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0 (0 = off), got {self.top_k}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")

    @property
    def greedy(self) -> bool:
        """Deterministic argmax decoding: every sample of a prompt is the same."""
        return self.temperature == 0


class FinishReason(str, enum.Enum):
    """Why a sample ended: an end-of-sequence token or stop sequence, or the token budget."""

    STOP = "stop"
    LENGTH = "length"


@dataclass(frozen=True)
class Completion:
    """One sampled continuation of a prompt.

    ``text``: decoded output, cut before the first stop sequence, special tokens removed.
    ``token_ids``: generated ids up to the end of the sample, eos excluded; a sample ended by a
    stop sequence keeps the tokens that spelled it (its text does not), so ``n_tokens`` counts
    every token the model produced (for tokens/second) and RL code gets the sampled ids.
    ``prompt_truncated``: the prompt was cut from the left to fit the model's context.
    """

    text: str
    token_ids: tuple[int, ...]
    finish_reason: FinishReason
    prompt_truncated: bool = False
    ended_by_eos: bool = False
    """The model produced an end-of-sequence token (not in ``token_ids``); RL trains on it too."""

    @property
    def n_tokens(self) -> int:
        return len(self.token_ids)


class GenerationBackend(Protocol):
    """Anything that samples ``n`` completions for each prompt.

    Returns one list per prompt, in prompt order, each with exactly ``n`` completions in sample
    order. Prompts are final text (chat templates already applied).
    """

    def generate(
        self, prompts: Sequence[str], params: SamplingParams, n: int = 1, *, first_sample: int = 0
    ) -> list[list[Completion]]:
        """``n`` completions per prompt: samples ``first_sample .. first_sample + n - 1``.

        Sample indices let a resumed run draw the samples an uninterrupted run would have drawn.
        """
        ...


class HFBackend:
    """`GenerationBackend` over a loaded `Policy` with ``model.generate``.

    ``batch_size``: most sequences per ``generate`` call (prompts x samples are flattened, sorted
    by prompt length to limit padding, and cut into rounds of this size).
    """

    def __init__(self, policy: Policy, batch_size: int = 16) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.policy = policy
        self.batch_size = batch_size
        tokenizer, model = policy.tokenizer, policy.model
        eos = {tokenizer.eos_token_id, *_as_list(model.generation_config.eos_token_id)}
        self.eos_ids = sorted(i for i in eos if i is not None)
        if not self.eos_ids:
            raise ValueError(f"{policy.name}: the tokenizer and generation config name no eos token")
        # Padding (prompt positions, masked; rows that already finished) uses eos, so any eos
        # ends a row. A distinct pad token is suppressed: a model that never saw it in training
        # (the tiny model) could otherwise sample it.
        self.pad_id = self.eos_ids[0]
        pad = tokenizer.pad_token_id
        self.suppress_ids = [pad] if pad is not None and pad not in self.eos_ids else []

    def generate(
        self, prompts: Sequence[str], params: SamplingParams, n: int = 1, *, first_sample: int = 0
    ) -> list[list[Completion]]:
        """``n`` completions per prompt (samples ``first_sample ..``); greedy decodes each prompt
        once and repeats the result."""
        if n < 1 or first_sample < 0:
            raise ValueError(f"need n >= 1 and first_sample >= 0, got {n} and {first_sample}")
        encoded = [self.encode(p, params.max_new_tokens) for p in prompts]
        distinct = 1 if params.greedy else n
        jobs = [(i, first_sample + j) for i in range(len(prompts)) for j in range(distinct)]
        jobs.sort(key=lambda job: len(encoded[job[0]][0]))  # stable: sample order kept
        results: dict[tuple[int, int], Completion] = {}
        for start in range(0, len(jobs), self.batch_size):
            round_jobs = jobs[start : start + self.batch_size]
            rows = [encoded[i] for i, _ in round_jobs]
            seeds = [row_seed(params.seed, prompts[i], j) for i, j in round_jobs]
            for job, completion in zip(round_jobs, self._generate_round(rows, seeds, params), strict=True):
                results[job] = completion
        if params.greedy:
            return [[results[(i, first_sample)]] * n for i in range(len(prompts))]
        return [[results[(i, first_sample + j)] for j in range(n)] for i in range(len(prompts))]

    def encode(self, prompt: str, max_new_tokens: int) -> tuple[list[int], bool]:
        """Token ids of a prompt, cut from the left if prompt + budget exceed the context."""
        ids = encode_prompt(self.policy.tokenizer, prompt)
        limit = self.policy.max_positions
        if limit is None:
            return ids, False
        # A causal model holds prompt and output in one context; an encoder only the prompt.
        room = max(1, limit - max_new_tokens) if self.policy.kind == "causal" else limit
        return (ids[-room:], True) if len(ids) > room else (ids, False)

    def _generate_round(
        self, rows: list[tuple[list[int], bool]], seeds: list[int], params: SamplingParams
    ) -> list[Completion]:
        """One ``generate`` call over at most ``batch_size`` rows."""
        input_ids, attention_mask = self._pad([ids for ids, _ in rows])
        processors = LogitsProcessorList()
        if not params.greedy:
            # CPU generators on any device: a seed draws the same sample on CPU and GPU.
            generators = [torch.Generator().manual_seed(s) for s in seeds]
            processors.append(SeededSampler(params.temperature, params.top_k, params.top_p, generators))
        start = 1 if self.policy.kind == "seq2seq" else input_ids.shape[1]
        stopping = StoppingCriteriaList()
        if params.stop:
            stopping.append(StopOnSequences(self.policy.tokenizer, params.stop, start, len(rows)))
        model = self.policy.model
        device = model_device(model)
        with torch.inference_mode():
            output = model.generate(
                input_ids=input_ids.to(device),
                attention_mask=attention_mask.to(device),
                generation_config=self._generation_config(params),
                logits_processor=processors,
                stopping_criteria=stopping,
            )
        generated = output[:, start:].cpu().tolist()
        return [
            self._completion(ids, params.stop, truncated)
            for ids, (_, truncated) in zip(generated, rows, strict=True)
        ]

    def _pad(self, rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T) ids and mask; padded on the left for causal models, on the right for seq2seq."""
        return pad_rows(rows, self.pad_id, left=self.policy.kind == "causal")

    def _generation_config(self, params: SamplingParams) -> GenerationConfig:
        """Greedy ``generate`` (sampling happens in `SeededSampler`) with neutral penalties."""
        model_defaults = self.policy.model.generation_config
        return GenerationConfig(
            max_new_tokens=params.max_new_tokens,
            do_sample=False,
            num_beams=1,
            use_cache=True,
            repetition_penalty=1.0,
            no_repeat_ngram_size=0,
            eos_token_id=self.eos_ids,
            pad_token_id=self.pad_id,
            bos_token_id=model_defaults.bos_token_id,
            decoder_start_token_id=model_defaults.decoder_start_token_id,
            suppress_tokens=self.suppress_ids or None,
        )

    def _completion(self, ids: list[int], stops: Sequence[str], truncated: bool) -> Completion:
        """Cut a generated row at its first eos, decode it, then cut the text at a stop."""
        end = next((k for k, t in enumerate(ids) if t in self.eos_ids), None)
        kept = ids if end is None else ids[:end]
        text = self.policy.tokenizer.decode(kept, skip_special_tokens=True)
        text, stopped = truncate_at_stop(text, stops)
        reason = FinishReason.STOP if end is not None or stopped else FinishReason.LENGTH
        return Completion(text, tuple(kept), reason, truncated, ended_by_eos=end is not None)


def pad_rows(rows: Sequence[Sequence[int]], pad_id: int, left: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T) long ids and 0/1 mask for ragged rows, padded on the left or on the right."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for b, row in enumerate(rows):
        span = slice(width - len(row), width) if left else slice(0, len(row))
        ids[b, span] = torch.tensor(list(row), dtype=torch.long)
        mask[b, span] = 1
    return ids, mask


def encode_prompt(tokenizer: Any, prompt: str) -> list[int]:
    """Token ids of a prompt exactly as generation sees it (training must match this).

    Special tokens (BOS) are added unless the text already starts with the BOS token, as a
    rendered chat template may.
    """
    bos = tokenizer.bos_token
    add_special = not (bos and prompt.startswith(bos))
    return list(tokenizer(prompt, add_special_tokens=add_special)["input_ids"])


def _as_list(value: int | list[int] | None) -> list[int]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]
