"""Rollouts: sample programs for a batch of tasks, run them, score them, and lay them out as tensors.

Generation happens in chunks of about ``batch_size`` sequences; each chunk's programs go to the
executor on a background thread while the next chunk is generated, so execution overlaps
generation instead of following it. Rows are group-major: rows ``[g*G, (g+1)*G)`` are the ``G``
samples of task ``g`` (the layout `group_advantages` expects).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from codefalcon.execution import ExecutionResult, Executor
from codefalcon.feedback import (
    UNIT_TEST_RULES,
    Reward,
    RewardBreakdown,
    complexity_reward,
    compose,
    maintainability_reward,
    ppocoder_components,
    ruff_reward,
)
from codefalcon.models import (
    Completion,
    HFBackend,
    Policy,
    SamplingParams,
    build_policy_prompt,
    extract_program,
)
from codefalcon.models.generation import pad_rows
from codefalcon.models.prompts import Prompt
from codefalcon.tasks.record import Task

PPOCODER_PARTS = frozenset({"compiler", "ast_match", "dataflow_match"})
"""Reward components that need the task's reference and language (`ppocoder_components`)."""
STATIC_REWARDS: dict[str, Callable[[str], Reward]] = {
    "ruff": ruff_reward,
    "complexity": complexity_reward,
    "maintainability": maintainability_reward,
}


@dataclass(frozen=True)
class RewardScorer:
    """Execution result + program -> `RewardBreakdown` (unit-test mode plus weighted static parts)."""

    unit_tests: str = "binary"
    static_weights: dict[str, float] | None = None
    aux_share: float = 0.5

    @property
    def runs_all_tests(self) -> bool:
        return UNIT_TEST_RULES[self.unit_tests].runs_all_tests

    def score(self, result: ExecutionResult, program: str, task: Task | None = None) -> RewardBreakdown:
        weights = {k: v for k, v in (self.static_weights or {}).items() if v > 0}
        auxiliaries = {name: STATIC_REWARDS[name](program) for name in weights if name in STATIC_REWARDS}
        if task is not None and PPOCODER_PARTS & weights.keys():
            # PPOCoder's signals against the task's reference, in the task's language.
            reference = task.solutions[0] if task.solutions else None
            parts = ppocoder_components(program, reference, task.tests.language, result)
            auxiliaries |= {name: parts[name] for name in PPOCODER_PARTS & weights.keys()}
        rule = UNIT_TEST_RULES[self.unit_tests]
        return compose(result, auxiliaries, weights, rule=rule, aux_share=self.aux_share)


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

    @property
    def size(self) -> int:
        return len(self.tasks)

    def to(self, device: torch.device | str) -> Rollouts:
        """The same rollouts with every tensor on ``device`` (the model's, for the update)."""
        return replace(self, **{k: v.to(device) for k, v in vars(self).items() if isinstance(v, Tensor)})

    def rows(self, index: Sequence[int]) -> Rollouts:
        """The rollouts of the given rows (for micro-batches); tensors are sliced, not copied."""
        i = torch.as_tensor(list(index), dtype=torch.long, device=self.rewards.device)
        pick = [self.tasks[k] for k in index]
        return replace(
            self,
            tasks=tuple(pick),
            prompt_ids=self.prompt_ids[i],
            prompt_mask=self.prompt_mask[i],
            completion_ids=self.completion_ids[i],
            completion_mask=self.completion_mask[i],
            truncated=self.truncated[i],
            texts=tuple(self.texts[k] for k in index),
            programs=tuple(self.programs[k] for k in index),
            results=tuple(self.results[k] for k in index),
            breakdowns=tuple(self.breakdowns[k] for k in index),
            rewards=self.rewards[i],
            reward_valid=self.reward_valid[i],
        )


@dataclass(frozen=True)
class RolloutTimes:
    generation: float
    """Seconds in the model's generate calls."""
    execution: float
    """Seconds the executor worked (overlapped with generation)."""
    execution_wait: float
    """Seconds the loop waited for execution after generation ended (the part not overlapped)."""


def collect_rollouts(
    policy: Policy,
    backend: HFBackend,
    tasks: Sequence[Task],
    group_size: int,
    params: SamplingParams,
    executor: Executor,
    scorer: RewardScorer,
    batch_size: int,
    prompt_for: Callable[[Task], Prompt] | None = None,
) -> tuple[Rollouts, RolloutTimes]:
    """Sample ``group_size`` programs per task, execute and score them; see the module docstring.

    ``prompt_for``: how to prompt a task (default `build_policy_prompt`; FALCON adds memory).
    """
    prompts = [prompt_for(task) if prompt_for else build_policy_prompt(task, policy) for task in tasks]
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
    breakdowns = [scorer.score(r, p, row[0]) for r, p, row in zip(results, programs, flat, strict=True)]
    rollouts = _tensorize(backend, flat, programs, results, breakdowns, params, group_size)
    return rollouts, RolloutTimes(generation, sum(s for _, s in done), wait)


def greedy_rewards(
    policy: Policy,
    backend: HFBackend,
    tasks: Sequence[Task],
    params: SamplingParams,
    executor: Executor,
    scorer: RewardScorer,
    prompt_for: Callable[[Task], Prompt] | None = None,
) -> Tensor:
    """(T,) reward of each task's greedy decode: CodeRL's baseline (missing rewards count as 0)."""
    greedy = replace(params, temperature=0.0)
    rollouts, _ = collect_rollouts(
        policy, backend, tasks, 1, greedy, executor, scorer, backend.batch_size, prompt_for
    )
    return torch.where(rollouts.reward_valid, rollouts.rewards, torch.zeros_like(rollouts.rewards))


def _generate(
    backend: HFBackend, prompts: list[Prompt], params: SamplingParams, n: int
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


def _tensorize(
    backend: HFBackend,
    flat: list[tuple[Task, Prompt, Completion]],
    programs: list[str],
    results: list[ExecutionResult],
    breakdowns: list[RewardBreakdown],
    params: SamplingParams,
    group_size: int,
) -> Rollouts:
    """Pad prompts on the left and completions on the right; fill missing rewards (see `Rollouts`)."""
    eos = backend.eos_ids[0]
    prompt_rows = [backend.encode(prompt.text, params.max_new_tokens)[0] for _, prompt, _ in flat]
    completion_rows = [list(c.token_ids) + ([eos] if c.ended_by_eos else []) for _, _, c in flat]
    completion_rows = [row or [eos] for row in completion_rows]  # an empty sample still ends somewhere
    prompt_ids, prompt_mask = pad_rows(prompt_rows, backend.pad_id, left=True)
    completion_ids, completion_mask = pad_rows(completion_rows, backend.pad_id, left=False)
    totals = [b.total for b in breakdowns]
    valid = torch.tensor([t is not None for t in totals])
    rewards = torch.tensor([t if t is not None else 0.0 for t in totals], dtype=torch.float32)
    for g in range(0, len(totals), group_size):  # missing rewards take their group's mean
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
    )
