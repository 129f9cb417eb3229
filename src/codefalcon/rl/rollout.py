"""Rollouts: sample programs for a batch of tasks, run them, score them, and lay them out as tensors.

Generation happens in chunks of about ``batch_size`` sequences; each chunk's programs go to the
executor on a background thread while the next chunk is generated, so execution overlaps
generation instead of following it. Rows are group-major: rows ``[g*G, (g+1)*G)`` are the ``G``
samples of task ``g`` (the layout `group_advantages` expects).

The sampling engine may be any `GenerationBackend` (CTranslate2, vLLM, a server: the recipe's
``backend:``); prompts and completions are always laid out by the trainer's own `HFBackend` (its
tokenizer, padding and eos), so the tensors are the same whichever engine sampled. An engine's
per-token log-probs, when it reports them, are kept in `Rollouts.engine_logprobs`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from codefalcon.execution import ExecutionResult, Executor
from codefalcon.feedback import RewardBreakdown, RewardScorer
from codefalcon.models import Completion, HFBackend, SamplingParams, extract_program
from codefalcon.models.generation import GenerationBackend, pad_rows
from codefalcon.models.prompts import Prompt
from codefalcon.tasks.record import Task


@dataclass(frozen=True)
class Rollouts:
    """One step's samples and what happened to them. B = tasks x group size.

    Built on the CPU; `to` moves the tensors to the model's device for the update.
    """

    tasks: tuple[Task, ...]
    """(B,) the task of each row."""
    prompt_ids: Tensor
    """(B, P) left-padded prompt ids, exactly as generation saw them."""
    prompt_mask: Tensor
    """(B, P) 1 for real prompt tokens."""
    completion_ids: Tensor
    """(B, C) right-padded sampled ids, the final eos included when the model produced one."""
    completion_mask: Tensor
    """(B, C) 1 for sampled tokens."""
    truncated: Tensor
    """(B,) bool: the sample hit max_new_tokens."""
    texts: tuple[str, ...]
    programs: tuple[str, ...]
    results: tuple[ExecutionResult, ...]
    breakdowns: tuple[RewardBreakdown, ...]
    rewards: Tensor
    """(B,) float32 total reward; rows whose reward is missing hold their group's mean."""
    reward_valid: Tensor
    """(B,) bool: False where the reward is missing (harness failure): such rows carry no loss."""
    engine_logprobs: Tensor | None = None
    """(B, C) float32 log-probs the sampling engine reported for the completion tokens, NaN where
    it reported none (a row without, padding); None when no row has any (HF sampling, which is
    the trainer's own model, requests none)."""

    @property
    def size(self) -> int:
        return len(self.tasks)

    def loss_mask(self, drop_truncated: bool = False) -> Tensor:
        """(B, C) bool: the sampled tokens that carry loss. Rows with a missing reward never do;
        with ``drop_truncated``, neither do samples cut at the token budget (overlong filtering)."""
        mask = self.completion_mask.bool() & self.reward_valid.unsqueeze(1)
        return mask & ~self.truncated.unsqueeze(1) if drop_truncated else mask

    def to(self, device: torch.device | str) -> Rollouts:
        """The same rollouts with every tensor on ``device`` (the model's, for the update)."""
        return replace(self, **{k: v.to(device) for k, v in vars(self).items() if isinstance(v, Tensor)})

    def rows(self, index: Sequence[int]) -> Rollouts:
        """The rollouts of the given rows (for micro-batches); tensors are sliced, not copied.

        Prompt columns that are padding in every chosen row are dropped (prompts are left-padded
        and positions count from each row's first token, so the outputs are the same), so a
        micro-batch costs what its own prompts need, and the same rows give the same shapes
        however the step's rows were split: one process or several (`codefalcon.rl.distributed`).
        """
        i = torch.as_tensor(list(index), dtype=torch.long, device=self.rewards.device)
        pick = [self.tasks[k] for k in index]
        prompt_mask = self.prompt_mask[i]
        first = 0  # the first column some chosen row has a prompt token in (meta tensors: no data)
        if prompt_mask.numel() and prompt_mask.device.type != "meta":
            first = prompt_mask.shape[1] - int(prompt_mask.sum(dim=1).max())
        return replace(
            self,
            tasks=tuple(pick),
            prompt_ids=self.prompt_ids[i][:, first:],
            prompt_mask=prompt_mask[:, first:],
            completion_ids=self.completion_ids[i],
            completion_mask=self.completion_mask[i],
            truncated=self.truncated[i],
            texts=tuple(self.texts[k] for k in index),
            programs=tuple(self.programs[k] for k in index),
            results=tuple(self.results[k] for k in index),
            breakdowns=tuple(self.breakdowns[k] for k in index),
            rewards=self.rewards[i],
            reward_valid=self.reward_valid[i],
            engine_logprobs=self.engine_logprobs[i] if self.engine_logprobs is not None else None,
        )


@dataclass(frozen=True)
class RolloutTimes:
    generation: float
    """Seconds in the model's generate calls."""
    execution: float
    """Seconds the executor worked (overlapped with generation)."""
    execution_wait: float
    """Seconds the loop waited for execution after generation ended (the part not overlapped)."""

    def metrics(self) -> dict[str, float]:
        return {
            "time/generation": self.generation,
            "time/execution": self.execution,
            "time/execution_wait": self.execution_wait,
        }


def collect_rollouts(
    backend: GenerationBackend,
    executor: Executor,
    scorer: RewardScorer,
    tasks: Sequence[Task],
    prompt_for: Callable[[Task], Prompt],
    params: SamplingParams,
    group_size: int,
    batch_size: int,
    encoder: HFBackend | None = None,
) -> tuple[Rollouts, RolloutTimes]:
    """Sample ``group_size`` programs per task, execute and score them; see the module docstring.

    ``prompt_for``: the task's prompt (`Prompter.base`, or FALCON's `MemoryPrompts`); generation
    goes to ``backend`` and programs to ``executor`` (both the caller's, so a recipe can swap
    either); ``batch_size``: sequences per generation chunk. ``encoder``: the trainer's
    `HFBackend` that lays the samples out as tensors; default ``backend`` itself (then an HF one).
    """
    encoder = _encoder(backend, encoder)
    prompts = [prompt_for(task) for task in tasks]
    per_chunk = max(1, batch_size // group_size)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rollout-exec")
    completions: list[list[Completion]] = []
    programs: list[str] = []
    futures: list[Future[tuple[list[ExecutionResult], float]]] = []
    generation = 0.0
    try:
        for start in range(0, len(tasks), per_chunk):
            chunk = range(start, min(start + per_chunk, len(tasks)))
            t0 = time.perf_counter()
            outs = _generate(backend, [prompts[i] for i in chunk], params, group_size)
            generation += time.perf_counter() - t0
            completions.extend(outs)
            pairs = [
                (tasks[i], extract_program(tasks[i], c.text, prompts[i].mode))
                for i, cs in zip(chunk, outs, strict=True)
                for c in cs
            ]
            programs.extend(program for _, program in pairs)
            jobs = [(task.runnable(program), task.tests) for task, program in pairs]
            futures.append(pool.submit(_run, executor, jobs, not scorer.runs_all_tests))
        t0 = time.perf_counter()
        done = [f.result() for f in futures]
        wait = time.perf_counter() - t0
    finally:
        pool.shutdown(wait=True)
    results = [r for rs, _ in done for r in rs]
    flat = [(tasks[g], prompts[g], c) for g, cs in enumerate(completions) for c in cs]
    breakdowns = scorer([task for task, _, _ in flat], programs, results)
    rollouts = tensorize_rollouts(encoder, flat, programs, results, breakdowns, params, group_size)
    return rollouts, RolloutTimes(generation, sum(s for _, s in done), wait)


def greedy_rewards(
    backend: GenerationBackend,
    executor: Executor,
    scorer: RewardScorer,
    tasks: Sequence[Task],
    prompt_for: Callable[[Task], Prompt],
    params: SamplingParams,
    encoder: HFBackend | None = None,
) -> Tensor:
    """(T,) reward of each task's greedy decode: CodeRL's baseline (missing rewards count as 0).
    ``encoder`` as in `collect_rollouts`."""
    encoder = _encoder(backend, encoder)
    greedy = replace(params, temperature=0.0, logprobs=False)
    rollouts, _ = collect_rollouts(
        backend, executor, scorer, tasks, prompt_for, greedy, 1, encoder.batch_size, encoder
    )
    return torch.where(rollouts.reward_valid, rollouts.rewards, torch.zeros_like(rollouts.rewards))


def _encoder(backend: GenerationBackend, encoder: HFBackend | None) -> HFBackend:
    """The back-end that tensorizes samples: ``encoder``, else ``backend`` when it is HF's."""
    if encoder is not None:
        return encoder
    if not isinstance(backend, HFBackend):
        raise TypeError(f"{type(backend).__name__} samples, so give the trainer's HFBackend as encoder")
    return backend


def _generate(
    backend: GenerationBackend, prompts: list[Prompt], params: SamplingParams, n: int
) -> list[list[Completion]]:
    """``n`` completions per prompt; prompts with other stop sequences are generated apart."""
    out: list[list[Completion] | None] = [None] * len(prompts)
    for stop in dict.fromkeys(p.stop for p in prompts):
        index = [i for i, p in enumerate(prompts) if p.stop == stop]
        stops = tuple(dict.fromkeys(params.stop + stop))
        got = backend.generate([prompts[i].text for i in index], replace(params, stop=stops), n)
        for i, completions in zip(index, got, strict=True):
            out[i] = completions
    return [c for c in out if c is not None]


def _run(executor: Executor, jobs: list, stop_early: bool) -> tuple[list[ExecutionResult], float]:
    t0 = time.perf_counter()
    results = executor.run_batch(jobs, stop_on_first_failure=stop_early)
    return results, time.perf_counter() - t0


def tensorize_rollouts(
    backend: HFBackend,
    flat: Sequence[tuple[Task, Prompt, Completion]],
    programs: Sequence[str],
    results: Sequence[ExecutionResult],
    breakdowns: Sequence[RewardBreakdown],
    params: SamplingParams,
    group_size: int,
) -> Rollouts:
    """Lay out scored samples as `Rollouts` (rows group-major, as ``flat`` is).

    Prompts are encoded as generation saw them (``backend.encode``) and left-padded; completions
    are the sampled ids plus the eos the model produced (``ended_by_eos``), right-padded; an empty
    sample becomes a lone eos, so every row has a token to train on. ``truncated``: the sample hit
    ``max_new_tokens``. A missing reward (total None) takes the mean of its group's present ones
    (0 if none is present) and its row is marked invalid (`Rollouts.loss_mask` drops it), so the
    group's advantages stay those of the rewards that exist. ``Completion.logprobs`` (aligned with
    the completion row, eos included) become `Rollouts.engine_logprobs`.
    """
    eos = backend.eos_ids[0]
    prompt_rows = [backend.encode(prompt.text, params.max_new_tokens)[0] for _, prompt, _ in flat]
    completion_rows = [list(c.token_ids) + ([eos] if c.ended_by_eos else []) for _, _, c in flat]
    completion_rows = [row or [eos] for row in completion_rows]
    prompt_ids, prompt_mask = pad_rows(prompt_rows, backend.pad_id, left=True)
    completion_ids, completion_mask = pad_rows(completion_rows, backend.pad_id, left=False)
    totals = [b.total for b in breakdowns]
    valid = torch.tensor([t is not None for t in totals])
    rewards = torch.tensor([t if t is not None else 0.0 for t in totals], dtype=torch.float32)
    for g in range(0, len(totals), group_size):
        group = slice(g, g + group_size)
        if valid[group].any() and not valid[group].all():
            mean = rewards[group][valid[group]].mean()
            rewards[group] = torch.where(valid[group], rewards[group], mean)
    return Rollouts(
        tasks=tuple(task for task, _, _ in flat),
        prompt_ids=prompt_ids,
        prompt_mask=prompt_mask,
        completion_ids=completion_ids,
        completion_mask=completion_mask,
        truncated=torch.tensor([c.finish_reason.value == "length" for _, _, c in flat]),
        texts=tuple(c.text for _, _, c in flat),
        programs=tuple(programs),
        results=tuple(results),
        breakdowns=tuple(breakdowns),
        rewards=rewards,
        reward_valid=valid,
        engine_logprobs=_engine_logprobs([c for _, _, c in flat], completion_rows, completion_ids.shape),
    )


def _engine_logprobs(
    completions: Sequence[Completion], rows: Sequence[Sequence[int]], shape: torch.Size
) -> Tensor | None:
    """(B, C) the engines' log-probs laid out like the completion ids, NaN where missing; None if
    no row has any. A row whose log-probs do not match its tokens one for one (an engine that
    dropped the eos one) counts as missing: a shifted log-prob would weigh the wrong token."""
    out = torch.full(tuple(shape), float("nan"), dtype=torch.float32)
    found = False
    for k, (completion, row) in enumerate(zip(completions, rows, strict=True)):
        if completion.logprobs is not None and len(completion.logprobs) == len(row):
            out[k, : len(row)] = torch.tensor(completion.logprobs, dtype=torch.float32)
            found = True
    return out if found else None


def rollout_metrics(rollouts: Rollouts) -> dict[str, float]:
    """Reward per component, pass rate, verdict mix, lengths and truncation of one step's samples."""
    record: dict[str, float] = {}
    sums: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    for breakdown in rollouts.breakdowns:
        for key, value in breakdown.metrics().items():
            sums[key] += value
            counts[key] += 1
    record.update({key: sums[key] / counts[key] for key in sums})
    record.setdefault("reward/total", 0.0)
    n = rollouts.size
    record["exec/pass_rate"] = sum(r.passed for r in rollouts.results) / n
    for verdict, count in Counter(r.verdict.value for r in rollouts.results).items():
        record[f"verdict/{verdict}"] = count / n
    lengths = rollouts.completion_mask.sum(dim=1).float()
    record["sample/length_mean"] = float(lengths.mean())
    record["sample/truncated_frac"] = float(rollouts.truncated.float().mean())
    record["sample/reward_missing_frac"] = float((~rollouts.reward_valid).float().mean())
    record.update(code_metrics(rollouts))
    return record


def code_metrics(rollouts: Rollouts) -> dict[str, float]:
    """Step means of each language's static sizes (``code/<language>/<metric>``, tree-sitter).

    Only for tasks in languages other than Python: PPOCoder's multi-language runs are where
    program shape is worth watching, and Python runs keep their step time.
    """
    from codefalcon.feedback import static_metrics

    sums: dict[str, list[float]] = {}
    for task, program in zip(rollouts.tasks, rollouts.programs, strict=True):
        language = task.tests.language
        if language == "python":
            continue
        for name, value in static_metrics(program, language).items():
            sums.setdefault(f"code/{language}/{name}", []).append(value)
    return {key: sum(values) / len(values) for key, values in sums.items()}
