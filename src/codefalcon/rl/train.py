"""`codefalcon train`: online RL from execution feedback, one loop for coderl, ppo, grpo and rloo.

The recipe, top to bottom: load the policy (and a frozen reference / value head if the algorithm
needs them) -> greedy pass@1 on held-out tasks ("before") -> for each step: take the next tasks
-> sample ``group_size`` programs per task while the executor runs the previous chunk -> reward
-> ``prepare`` (advantages) -> micro-batched update(s) -> CodeRL's supervised step -> log ->
checkpoint -> greedy pass@1 "after". Samples of step ``s`` are seeded from (seed, s) and the task
order from (seed, epoch), so a run resumed from a checkpoint continues exactly.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch

from codefalcon.execution import Executor, ExecutorConfig
from codefalcon.models import HFBackend, Policy, SamplingParams, model_device
from codefalcon.models.answers import encode_example
from codefalcon.rl.algorithms import (
    PPO,
    Algorithm,
    CodeRL,
    GroupRelative,
    StepContext,
    ValueHead,
    micro_batches,
)
from codefalcon.rl.checkpoint import latest_checkpoint, load_trainer_state, save_checkpoint
from codefalcon.rl.falcon import Falcon
from codefalcon.rl.grpo import group_advantages, rloo_advantages
from codefalcon.rl.memory_prompts import MemoryPrompts, open_memory, store_references
from codefalcon.rl.metrics_log import MetricsLog
from codefalcon.rl.optim import autocast_enabled, optimizer_step
from codefalcon.rl.policy_setup import load_trainable_policy
from codefalcon.rl.rollout import RewardScorer, Rollouts, collect_rollouts, greedy_rewards
from codefalcon.rl.run_dir import open_run, progress_bar, seeded_epochs
from codefalcon.rl.sft import accumulate_ce
from codefalcon.rl.train_config import TrainConfig
from codefalcon.tasks.record import Task

log = logging.getLogger(__name__)


def make_algorithm(config: TrainConfig) -> Algorithm:
    """The algorithm object for ``config.algo`` (its options come from its own section)."""
    on_policy = config.updates_per_step == 1
    if config.algo == "grpo":
        advantages = partial(group_advantages, scale=config.grpo.scale_rewards)
        return GroupRelative("grpo", advantages, config.grpo, config.group_size, on_policy)
    if config.algo == "rloo":
        return GroupRelative("rloo", rloo_advantages, config.grpo, config.group_size, on_policy)
    if config.algo == "ppo":
        return PPO(config.ppo)
    if config.algo == "falcon":
        return Falcon(config.falcon, config.grpo, config.group_size)
    return CodeRL(config.coderl)


@dataclass
class _Run:
    """Everything a step needs, set up once by `train_rl`."""

    config: TrainConfig
    policy: Policy
    algo: Algorithm
    ctx: StepContext
    optimizer: torch.optim.Optimizer
    backend: HFBackend
    executor: Executor
    scorer: RewardScorer
    prompts: MemoryPrompts | None = None
    """FALCON: memory-augmented prompts, and where rollouts are recorded."""


def train_rl(config: TrainConfig, progress: bool = True) -> dict[str, Any]:
    """Run (or resume) RL training; returns the run summary (pass@1 before/after, steps)."""
    out, checkpoint = open_run(config.out_dir, config, config.seed)
    algo = make_algorithm(config)
    policy = load_trainable_policy(
        config.model, config.dtype, config.lora, checkpoint.model_dir if checkpoint else None, config.device
    )
    policy.model.eval()  # no dropout in RL: the sampled and the trained distribution must agree
    ctx = _context(config, policy, algo)
    params = [p for p in policy.model.parameters() if p.requires_grad]
    if ctx.value_head is not None:
        params += list(ctx.value_head.parameters())
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    step, position = 0, (0, 0)
    if checkpoint is not None:
        extra = load_trainer_state(checkpoint, optimizer, None)
        step, position = checkpoint.step, tuple(checkpoint.state["position"])
        _restore_extra(extra, ctx, algo)
        log.warning("resuming from %s (step %d)", checkpoint.path, step)
    train_tasks = config.train.load()
    if not train_tasks:
        raise ValueError("train: no tasks loaded")
    eval_tasks = (config.eval.load() if config.eval else [])[: config.eval_limit]
    metrics = MetricsLog(out, checkpoint.step if checkpoint else None, config.tensorboard)
    scorer = RewardScorer(
        config.reward.unit_tests, dict(config.reward.static_weights), config.reward.aux_share
    )
    with contextlib.ExitStack() as stack:
        executor = stack.enter_context(
            Executor(ExecutorConfig(workers=config.exec_workers, timeout=config.exec_timeout))
        )
        backend = HFBackend(policy, batch_size=config.sampling.batch_size)
        run = _Run(config, policy, algo, ctx, optimizer, backend, executor, scorer)
        if isinstance(algo, Falcon):
            run.prompts = _memory_prompts(
                config, policy, train_tasks, out, checkpoint.step if checkpoint else 0, stack
            )
        evaluate = partial(_evaluate, run, eval_tasks, out)
        if checkpoint is None and eval_tasks:
            metrics.log(0, {"eval/pass@1": evaluate("before")})
        step = _loop(
            run, train_tasks, step, position, out, metrics, evaluate if eval_tasks else None, progress
        )
        summary: dict[str, Any] = {"algo": config.algo, "steps": step}
        if eval_tasks:
            summary["pass@1_after"] = evaluate("after")
            metrics.log(step, {"eval/pass@1": summary["pass@1_after"]})
            summary["pass@1_before"] = _read_pass_at_1(out / "eval" / "before")
    metrics.close()
    final = out / "final"
    policy.model.save_pretrained(final)
    policy.tokenizer.save_pretrained(final)
    return {**summary, "final_model": str(final)}


def _loop(
    run: _Run,
    tasks: list[Task],
    step: int,
    position: tuple[int, int],
    out: Path,
    metrics: MetricsLog,
    evaluate: Callable[[str], float | None] | None,
    progress: bool,
) -> int:
    """Steps until ``max_steps`` or ``max_minutes``; checkpoints on the way and at the end."""
    config = run.config
    batches = _task_batches(tasks, config, position)
    bar = progress_bar(config.max_steps, step, "train", progress)
    started = time.perf_counter()
    while step < config.max_steps:
        if config.max_minutes and time.perf_counter() - started > 60 * config.max_minutes:
            log.warning("max_minutes reached at step %d", step)
            break
        batch, position = next(batches)
        record = _train_step(run, step, batch)
        step += 1
        if evaluate and step % config.eval_every == 0 and step < config.max_steps:
            record["eval/pass@1"] = evaluate(f"step-{step:06d}")
        metrics.log(step, record)
        bar.update(1)
        bar.set_postfix(reward=f"{record['reward/total']:.3f}", pass_rate=f"{record['exec/pass_rate']:.2f}")
        if step % config.save_every == 0 or step == config.max_steps:
            _save(out, step, run, position)
    bar.close()
    last = latest_checkpoint(out / "checkpoints")
    if last is None or last.step != step:
        _save(out, step, run, position)
    return step


def _train_step(run: _Run, step: int, tasks: list[Task]) -> dict[str, float]:
    """One step: rollouts, advantages, update(s), CodeRL's CE step; returns the step's metrics."""
    config, algo, ctx = run.config, run.algo, run.ctx
    sampling = config.sampling
    params = SamplingParams(
        temperature=sampling.temperature,
        top_p=sampling.top_p,
        max_new_tokens=sampling.max_new_tokens,
        seed=config.seed * 1_000_003 + step,  # new samples every step, the same ones on resume
    )
    rollouts, times = collect_rollouts(
        run.policy,
        run.backend,
        tasks,
        config.group_size,
        params,
        run.executor,
        run.scorer,
        sampling.batch_size,
        run.prompts,
    )
    device = model_device(run.policy.model)
    rollouts = rollouts.to(device)  # advantages, returns and losses meet the model's outputs there
    record = {"time/generation": times.generation, "time/execution": times.execution}
    record["time/execution_wait"] = times.execution_wait
    t0 = time.perf_counter()
    if isinstance(algo, CodeRL) and config.coderl.relative_returns:
        baseline = greedy_rewards(run.policy, run.backend, tasks, params, run.executor, run.scorer)
        ctx.baseline = baseline.repeat_interleave(config.group_size).to(device)
        record["time/baseline"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    prepared = algo.prepare(ctx, rollouts)
    record.update(prepared.metrics)
    if isinstance(algo, Falcon):
        record.update(algo.meta_update(ctx, rollouts, prepared, run.optimizer, config.max_grad_norm))
    else:
        for _ in range(config.updates_per_step):
            record.update(_update(config, algo, ctx, rollouts, prepared, run.optimizer))
    if algo.supervised_step:
        record.update(_supervised_step(config, run.policy, tasks, run.optimizer))
    record["time/update"] = time.perf_counter() - t0
    if run.prompts is not None:
        run.prompts.record(rollouts, step + 1)
    record.update(rollout_metrics(rollouts))
    return record


def _update(
    config: TrainConfig, algo: Algorithm, ctx: StepContext, rollouts: Rollouts, prepared: Any, optimizer: Any
) -> dict[str, float]:
    """One optimiser step over all rollouts, accumulated over micro-batches by loss-token share."""
    total = float(prepared.loss_mask.sum())
    stats: dict[str, float] = {}
    if total == 0:
        return {"loss/skipped_empty_step": 1.0}
    for index in micro_batches(rollouts.size, config.micro_batch_size):
        prep = prepared.rows(index)
        share = float(prep.loss_mask.sum()) / total
        if share == 0:
            continue
        loss, micro_stats = algo.loss(ctx, rollouts.rows(index), prep)
        (loss * share).backward()
        for key, value in micro_stats.items():
            stats[key] = stats.get(key, 0.0) + share * value
    stats["optim/grad_norm"] = optimizer_step(optimizer, config.max_grad_norm)
    return stats


def _supervised_step(
    config: TrainConfig, policy: Policy, tasks: list[Task], optimizer: Any
) -> dict[str, float]:
    """CodeRL alternates RL updates with cross-entropy on ground-truth programs of the same tasks."""
    examples = [encode_example(policy, t, t.solutions[0]) for t in tasks if t.solutions]
    limit = policy.max_positions or 10**9
    examples = [e for e in examples if e.length <= limit]
    if not examples:
        return {}
    micro = [
        examples[i : i + config.micro_batch_size] for i in range(0, len(examples), config.micro_batch_size)
    ]
    autocast = autocast_enabled(config.bf16_autocast, model_device(policy.model))
    loss, _ = accumulate_ce(policy.model, policy.kind, micro, autocast, config.coderl.ce_coef)
    optimizer_step(optimizer, config.max_grad_norm)
    return {"loss/ce": loss}


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


def _context(config: TrainConfig, policy: Policy, algo: Algorithm) -> StepContext:
    ctx = StepContext(
        model=policy.model,
        temperature=config.sampling.temperature,
        micro_batch_size=config.micro_batch_size,
        autocast=autocast_enabled(config.bf16_autocast, model_device(policy.model)),
    )
    if algo.needs_reference:
        ctx.reference = _reference(config, policy)
    if algo.needs_values:  # on the policy's device before the optimiser is built over it
        ctx.value_head = ValueHead(policy.model.config.hidden_size).to(model_device(policy.model))
    if isinstance(algo, CodeRL) and config.coderl.critic:
        ctx.critic_probs = _critic_probs(config.coderl.critic, policy)
    return ctx


def _reference(config: TrainConfig, policy: Policy) -> Callable[[], Any]:
    """The frozen start policy: the base without its adapter (LoRA), or a frozen copy of it."""
    if config.lora is not None:
        return lambda: _adapter_disabled(policy.model)
    from codefalcon.models import load_policy

    reference = load_policy(config.model, dtype=config.dtype, device=model_device(policy.model))
    frozen = reference.model.eval().requires_grad_(False)
    return lambda: contextlib.nullcontext(frozen)


@contextlib.contextmanager
def _adapter_disabled(model: Any) -> Iterator[Any]:
    with model.disable_adapter():
        yield model


def _critic_probs(path: str, policy: Policy) -> Callable[[Rollouts], torch.Tensor]:
    """CodeRL's token weights from a trained critic (`codefalcon critic train`)."""
    from codefalcon.rl.critic_weights import CriticTokenWeights

    return CriticTokenWeights(path, device=model_device(policy.model))


def _task_batches(
    tasks: list[Task], config: TrainConfig, position: tuple[int, int]
) -> Iterator[tuple[list[Task], tuple[int, int]]]:
    """Endless batches of ``tasks_per_step`` tasks from (epoch, offset), a seeded order per epoch."""
    key = f"codefalcon.train/{config.seed}"
    for index, after in seeded_epochs(len(tasks), config.tasks_per_step, key, position):
        yield [tasks[i] for i in index], after


def _evaluate(run: _Run, tasks: list[Task], out: Path, name: str) -> float | None:
    """Greedy pass@1 on the eval tasks, written to ``eval/<name>/`` (samples, results, summary).

    FALCON's policy is evaluated with its memory in the prompt (test tasks are never in it).
    """
    from codefalcon.evaluation.policy import evaluate_policy

    config = run.config
    params = SamplingParams(temperature=0.0, max_new_tokens=config.eval_max_new_tokens, seed=config.seed)
    folder = out / "eval" / name
    if (folder / "samples.jsonl").exists():
        (folder / "samples.jsonl").unlink()  # an interrupted evaluation restarts from scratch
    summary = evaluate_policy(
        run.policy,
        tasks,
        folder,
        params,
        executor=run.executor,
        batch_size=config.sampling.batch_size,
        progress=False,
        prompt_for=run.prompts,
    )
    return summary["pass_at_k"]["pass@1"]["value"]


def _read_pass_at_1(folder: Path) -> float | None:
    path = folder / "summary.json"
    return json.loads(path.read_text())["pass_at_k"]["pass@1"]["value"] if path.is_file() else None


def _memory_prompts(
    config: TrainConfig,
    policy: Policy,
    tasks: list[Task],
    out: Path,
    resume_step: int,
    stack: contextlib.ExitStack,
) -> MemoryPrompts:
    """FALCON's long-term memory, rolled back to the checkpoint if it is the run's own store, and
    holding the training tasks' verified reference solutions (``falcon.seed_with_references``)."""
    options = config.falcon
    memory = stack.enter_context(open_memory(options.memory or out / "memory.db", options.embedder))
    if options.memory is None:
        memory.forget_after(resume_step)
    if options.seed_with_references:
        store_references(
            memory, tasks, ExecutorConfig(workers=config.exec_workers, timeout=config.exec_timeout)
        )
    budget = (policy.max_positions or 4096) - config.sampling.max_new_tokens
    return MemoryPrompts(policy, memory, options.retrieve_k, budget, options.example_filter)


def _save(out: Path, step: int, run: _Run, position: Any) -> None:
    extra: dict[str, Any] = {}
    if run.ctx.value_head is not None:
        extra["value_head"] = copy.deepcopy(run.ctx.value_head.state_dict())
    if isinstance(run.algo, PPO):
        extra["kl"] = run.algo.kl.state_dict()
    state = {"position": list(position), "algo": run.config.algo}
    save_checkpoint(
        out / "checkpoints",
        step,
        run.policy.model,
        run.policy.tokenizer,
        run.optimizer,
        None,
        state,
        extra=extra,
        keep=run.config.keep_checkpoints,
    )


def _restore_extra(extra: dict[str, Any], ctx: StepContext, algo: Algorithm) -> None:
    if ctx.value_head is not None and "value_head" in extra:
        ctx.value_head.load_state_dict(extra["value_head"])
    if isinstance(algo, PPO) and "kl" in extra:
        algo.kl.load_state_dict(extra["kl"])
