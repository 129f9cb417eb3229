"""Generation back-ends: the `GenerationBackend` protocol and its Hugging Face implementation.

A back-end turns prompt strings into completions; it knows nothing of tasks or programs. The HF
back-end samples ``n`` completions per prompt in rounds of at most ``batch_size`` sequences
(CodeRL's ``num_seqs`` / ``num_seqs_per_iter``) so memory stays bounded whatever ``n`` is, with
left padding for causal models, the KV cache on, stop sequences, and per-sample seeds (see
`codefalcon.models.decoding`). Other engines (CTranslate2, vLLM, an OpenAI-compatible server)
implement the same protocol in `codefalcon.models.backends`, each importing its engine lazily;
the helpers at the bottom of this module (`encode_for_generation`, `fan_out`, `finish_row`) are
what they share with `HFBackend`, so every back-end encodes, truncates and cuts samples alike.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from transformers import (
    GenerationConfig,
    LogitsProcessor,
    LogitsProcessorList,
    StoppingCriteriaList,
    SuppressTokensLogitsProcessor,
)

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
    logprobs: bool = False
    """Also return each sampled token's log-probability (`Completion.logprobs`)."""

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
    logprobs: tuple[float, ...] | None = None
    """The engine's log-probability of each token it produced: one per ``token_ids`` entry, plus
    one for the eos token when ``ended_by_eos`` (last), i.e. aligned with the ids the trainer
    scores. log softmax(logits / T) at the sampling temperature T (1 for greedy), before top-k
    / top-p: what the trainer recomputes (`codefalcon.rl.logprobs`), so the two can be compared
    (``sample/logp_gap``). None unless ``SamplingParams.logprobs`` (and the engine can: see
    docs/models.md for what each engine reports)."""

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


class SyncedBackend(GenerationBackend, Protocol):
    """A back-end that holds its own copy of the weights (any engine but `HFBackend`).

    RL calls ``sync(policy)`` after an optimizer step (every ``sync_every`` steps) so the engine
    samples from the trained weights; ``close()`` frees the engine. `HFBackend` has both too:
    it samples from the trainer's own model, so its ``sync`` does nothing.
    """

    def sync(self, policy: Policy) -> None:
        """Copy the policy's current weights (a LoRA policy: its merged weights or its adapter)
        into the engine; later calls sample from them."""
        ...

    def close(self) -> None:
        """Release the engine (threads, memory, temporary files)."""
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
        self.eos_ids = eos_token_ids(tokenizer, model.generation_config)
        if not self.eos_ids:
            raise ValueError(f"{policy.name}: the tokenizer and generation config name no eos token")
        # Padding (prompt positions, masked; rows that already finished) uses eos, so any eos
        # ends a row. A distinct pad token is suppressed: a model that never saw it in training
        # (the tiny model) could otherwise sample it.
        self.pad_id = self.eos_ids[0]
        pad = tokenizer.pad_token_id
        self.suppress_ids = [pad] if pad is not None and pad not in self.eos_ids else []

    def sync(self, policy: Policy) -> None:
        """Sample from ``policy`` from now on; the trainer's own policy needs nothing copied,
        since its model is the one sampled from (same tokenizer assumed)."""
        self.policy = policy

    def close(self) -> None:
        """Nothing to release: the model belongs to the caller."""

    def generate(
        self, prompts: Sequence[str], params: SamplingParams, n: int = 1, *, first_sample: int = 0
    ) -> list[list[Completion]]:
        """``n`` completions per prompt (samples ``first_sample ..``); greedy decodes each prompt
        once and repeats the result."""
        encoded = [self.encode(p, params.max_new_tokens) for p in prompts]
        return fan_out(self.generate_rows, prompts, encoded, params, n, first_sample)

    def generate_rows(
        self, rows: Sequence[tuple[list[int], bool]], seeds: Sequence[int], params: SamplingParams
    ) -> list[Completion]:
        """One completion per encoded row ``(token ids, prompt_truncated)``, row k sampled with
        its own generator seeded ``seeds[k]``; in row order.

        Rows are sorted by length (stable, so equal lengths keep their order) and cut into rounds
        of ``batch_size`` to limit padding. The server (`codefalcon.models.serve`) calls this
        with the seeds its clients send.
        """
        if len(rows) != len(seeds):
            raise ValueError(f"{len(rows)} rows but {len(seeds)} seeds")
        order = sorted(range(len(rows)), key=lambda k: len(rows[k][0]))
        results: list[Completion | None] = [None] * len(rows)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            completions = self._generate_round([rows[k] for k in chunk], [seeds[k] for k in chunk], params)
            for k, completion in zip(chunk, completions, strict=True):
                results[k] = completion
        return results  # type: ignore[return-value]  # every slot filled above

    def encode(self, prompt: str, max_new_tokens: int) -> tuple[list[int], bool]:
        """Token ids of a prompt, cut from the left if prompt + budget exceed the context."""
        policy = self.policy
        return encode_for_generation(
            policy.tokenizer, prompt, max_new_tokens, policy.max_positions, policy.kind
        )

    def _generate_round(
        self, rows: list[tuple[list[int], bool]], seeds: list[int], params: SamplingParams
    ) -> list[Completion]:
        """One ``generate`` call over at most ``batch_size`` rows."""
        input_ids, attention_mask = self._pad([ids for ids, _ in rows])
        # Our own processors, in order: record log-probs from the raw logits, suppress the pad
        # token, then sample (`SeededSampler`) or leave greedy's argmax.
        processors = LogitsProcessorList()
        recorder = TokenLogprobs(params.temperature) if params.logprobs else None
        if recorder is not None:
            processors.append(recorder)
        if self.suppress_ids:
            device = model_device(self.policy.model)
            processors.append(SuppressTokensLogitsProcessor(self.suppress_ids, device=device))
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
        generated = output[:, start:].cpu()
        logprobs = recorder.finish(generated[:, -1]).tolist() if recorder is not None else [None] * len(rows)
        tokenizer = self.policy.tokenizer
        return [
            finish_row(tokenizer, ids, self.eos_ids, params.stop, truncated, row_logprobs)
            for ids, (_, truncated), row_logprobs in zip(generated.tolist(), rows, logprobs, strict=True)
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
        )


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


class TokenLogprobs(LogitsProcessor):
    """Records log softmax(logits / T) of each chosen token (T = 1 for greedy); changes nothing.

    Runs first, on the raw logits. The token chosen at a step is only known at the next call
    (the last column of ``input_ids``), so one step's (B, V) log-probs are held until then and
    `finish` takes the last step's tokens.
    """

    def __init__(self, temperature: float) -> None:
        self.temperature = temperature if temperature > 0 else 1.0
        self.pending: torch.Tensor | None = None  # (B, V) log-probs of the step before
        self.steps: list[torch.Tensor] = []  # (B,) each

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.pending is not None:
            self._take(input_ids[:, -1])
        self.pending = torch.log_softmax(scores.float() / self.temperature, dim=-1)
        return scores

    def finish(self, last_tokens: torch.Tensor) -> torch.Tensor:
        """(B, C) log-probs of every generated token; ``last_tokens`` (B,) are the final step's."""
        if self.pending is not None:
            self._take(last_tokens)
        if not self.steps:
            return torch.zeros((last_tokens.shape[0], 0))
        return torch.stack(self.steps, dim=1).cpu()

    def _take(self, tokens: torch.Tensor) -> None:
        pending = self.pending
        assert pending is not None
        self.steps.append(pending.gather(1, tokens.to(pending.device).view(-1, 1)).squeeze(1))
        self.pending = None


def encode_prompt(tokenizer: Any, prompt: str) -> list[int]:
    """Token ids of a prompt exactly as generation sees it (training must match this).

    Special tokens (BOS) are added unless the text already starts with the BOS token, as a
    rendered chat template may.
    """
    bos = tokenizer.bos_token
    add_special = not (bos and prompt.startswith(bos))
    return list(tokenizer(prompt, add_special_tokens=add_special)["input_ids"])


def encode_for_generation(
    tokenizer: Any, prompt: str, max_new_tokens: int, max_positions: int | None, kind: str = "causal"
) -> tuple[list[int], bool]:
    """Token ids of a prompt (`encode_prompt`) and whether it was cut from the left to fit.

    A causal model holds prompt and output in one context of ``max_positions`` tokens, so the
    prompt keeps at most ``max_positions - max_new_tokens`` (at least 1); an encoder holds only
    the prompt. ``max_positions`` None: no limit.
    """
    ids = encode_prompt(tokenizer, prompt)
    if max_positions is None:
        return ids, False
    room = max(1, max_positions - max_new_tokens) if kind == "causal" else max_positions
    return (ids[-room:], True) if len(ids) > room else (ids, False)


def eos_token_ids(tokenizer: Any, generation_config: Any) -> list[int]:
    """Every id that ends a sample: the tokenizer's eos and the generation config's (sorted)."""
    eos = {tokenizer.eos_token_id, *_as_list(getattr(generation_config, "eos_token_id", None))}
    return sorted(i for i in eos if i is not None)


RowsFn = Callable[[Sequence[tuple[list[int], bool]], Sequence[int], SamplingParams], list[Completion]]


def fan_out(
    generate_rows: RowsFn,
    prompts: Sequence[str],
    encoded: Sequence[tuple[list[int], bool]],
    params: SamplingParams,
    n: int,
    first_sample: int,
) -> list[list[Completion]]:
    """The `GenerationBackend.generate` contract on top of a back-end's ``generate_rows``.

    Builds one row per (prompt i, sample j) for j in ``first_sample .. first_sample + n - 1``,
    seeded `row_seed` (seed, prompt, j), calls ``generate_rows(rows, seeds, params)`` once and
    regroups the results by prompt. Greedy decodes each prompt once and repeats the result.
    """
    if n < 1 or first_sample < 0:
        raise ValueError(f"need n >= 1 and first_sample >= 0, got {n} and {first_sample}")
    distinct = 1 if params.greedy else n
    jobs = [(i, first_sample + j) for i in range(len(prompts)) for j in range(distinct)]
    seeds = [row_seed(params.seed, prompts[i], j) for i, j in jobs]
    flat = generate_rows([encoded[i] for i, _ in jobs], seeds, params) if jobs else []
    results = dict(zip(jobs, flat, strict=True))
    if params.greedy:
        return [[results[(i, first_sample)]] * n for i in range(len(prompts))]
    return [[results[(i, first_sample + j)] for j in range(n)] for i in range(len(prompts))]


def finish_row(
    tokenizer: Any,
    ids: Sequence[int],
    eos_ids: Sequence[int],
    stops: Sequence[str],
    truncated: bool,
    logprobs: Sequence[float] | None = None,
) -> Completion:
    """A `Completion` from generated ids: cut at the first eos, decode, cut the text at a stop.

    A sample whose text reached a stop sequence ended there, so an eos after it is not the
    model's: HF pads rows that a stop sequence finished with eos while the rest of the batch
    runs on (whether it does depends on the batch), and RL must not train on that eos.
    ``logprobs`` (one per id, or None) are cut with the ids, keeping the eos token's.
    """
    end = next((k for k, t in enumerate(ids) if t in eos_ids), None)
    kept = list(ids) if end is None else list(ids[:end])
    text = tokenizer.decode(kept, skip_special_tokens=True)
    text, stopped = truncate_at_stop(text, stops)
    reason = FinishReason.STOP if end is not None or stopped else FinishReason.LENGTH
    ended_by_eos = end is not None and not stopped
    width = len(kept) + ended_by_eos
    kept_logprobs = None if logprobs is None else tuple(float(x) for x in logprobs[:width])
    return Completion(text, tuple(kept), reason, truncated, ended_by_eos=ended_by_eos, logprobs=kept_logprobs)


def _as_list(value: int | list[int] | None) -> list[int]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]
