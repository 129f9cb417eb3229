"""Supervised warm-up (CodeRL's first stage): fine-tune a policy on reference solutions.

The recipe, top to bottom: load the policy -> tokenize (prompt, reference answer) pairs with the
loss on answer tokens only (`codefalcon.models.answers`) -> AdamW with warm-up and decay,
gradient accumulation, clipping -> held-out loss every ``eval_every`` steps -> checkpoints every
``save_every`` steps that resume exactly -> the final model in ``out_dir/final`` -> held-out
pass@1 (greedy) with a per-difficulty table.

The data order is a seeded permutation per epoch, and the checkpoint stores (epoch, offset), so
a resumed run sees exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field, model_validator

from codefalcon.configs import DeviceName, StrictModel
from codefalcon.execution import ExecutorConfig
from codefalcon.memory.options import ExampleFilterOptions
from codefalcon.models.answers import IGNORE_INDEX, Example, encode_example
from codefalcon.models.loading import model_device
from codefalcon.models.prompter import Prompter
from codefalcon.rl.checkpoint import latest_checkpoint, load_trainer_state, save_checkpoint
from codefalcon.rl.executor_options import ExecutorOptions
from codefalcon.rl.logprobs import forward_accepts
from codefalcon.rl.losses.ce import masked_token_cross_entropy
from codefalcon.rl.memory_prompts import MemoryPrompts, open_memory, store_references
from codefalcon.rl.metrics_log import MetricsLog
from codefalcon.rl.optim import Bf16Setting, autocast_enabled, bf16_autocast, optimizer_step
from codefalcon.rl.policy_setup import LoraOptions, load_trainable_policy
from codefalcon.rl.run_dir import RUN_CONTROL_KEYS, open_run, progress_bar, seeded_epochs
from codefalcon.tasks.record import Task
from codefalcon.tasks.source import TaskSource, load_sources

log = logging.getLogger(__name__)


SFT_MAY_CHANGE_ON_RESUME = RUN_CONTROL_KEYS | {
    "eval_loss_limit",
    "final_eval",
    "eval_max_new_tokens",
    "eval_batch_size",
}
"""Keys a resumed warm-up may change without ``allow_config_change``: where and how long it runs,
how often it saves and evaluates, and the final evaluation. ``max_steps`` also sets the length of
the decaying LR schedule, so a longer run decays more slowly from the resumed step on."""


class MemoryContext(ExampleFilterOptions):
    """Retrieval-aware warm-up: some prompts carry solved similar training tasks, as FALCON's will."""

    k: int = Field(default=2, ge=1)
    """Retrieved solutions per prompt."""
    fraction: float = Field(default=0.5, gt=0, le=1)
    """Share of the examples trained with retrieved context (chosen by task, seeded)."""
    embedder: str = "hashing"


class SFTConfig(StrictModel):
    """Options of `codefalcon sft` (YAML keys; each can be overridden as key=value)."""

    model: str
    """Policy to fine-tune: local HF folder, .gguf file or short name (smollm2-135m)."""
    dtype: Literal["float32", "bfloat16"] = "float32"
    """Weights dtype. On CPU keep float32 weights and use ``bf16_autocast`` for speed."""
    device: DeviceName = "auto"
    """"auto" (CUDA when available, else CPU), "cpu", "cuda" or "cuda:N"."""
    lora: LoraOptions | None = None
    """Train a LoRA adapter instead of every weight (peft)."""
    train: list[TaskSource]
    """Training tasks; their reference solutions are the targets."""
    eval: TaskSource | None = None
    """Held-out tasks for loss and final pass@1."""
    out_dir: str = "runs/sft"
    """Run folder: checkpoints/, final/, metrics.jsonl, eval/, config.yaml."""
    seed: int = 0
    max_steps: int = Field(default=1000, ge=1)
    """Optimiser steps; the LR schedule spans exactly this many."""
    max_minutes: float | None = Field(default=None, gt=0)
    """Stop early (checkpointed) after this much training time; the schedule is unchanged."""
    micro_batch_size: int = Field(default=8, ge=1)
    grad_accum: int = Field(default=4, ge=1)
    """Micro-batches per optimiser step; the loss is averaged over all their answer tokens."""
    lr: float = Field(default=5e-4, gt=0)
    weight_decay: float = Field(default=0.01, ge=0)
    warmup_steps: int = Field(default=50, ge=0)
    lr_schedule: Literal["cosine", "linear", "constant"] = "cosine"
    """Decay after warm-up (to zero at ``max_steps`` for cosine and linear)."""
    max_grad_norm: float = Field(default=1.0, gt=0)
    max_length: int = Field(default=512, ge=8)
    """Longer examples (prompt + answer tokens) are dropped and counted, never cut."""
    memory_context: MemoryContext | None = None
    """Train part of the examples under prompts with retrieved solutions (for FALCON)."""
    max_solutions_per_task: int = Field(default=1, ge=1)
    """APPS has many references per problem; each used one is an example."""
    bf16_autocast: Bf16Setting = "auto"
    """bfloat16 autocast of forward/backward on the model's device (weights stay float32). auto:
    on a GPU, and on a CPU only with native bf16 (AVX512-BF16/AMX: about 1.5-2x faster there);
    on AVX2-only CPUs bf16 is emulated and several times slower, so true there warns."""
    eval_every: int = Field(default=200, ge=1)
    eval_loss_limit: int = Field(default=200, ge=1)
    """Held-out examples used for the periodic loss."""
    save_every: int = Field(default=100, ge=1)
    keep_checkpoints: int = Field(default=2, ge=1)
    final_eval: bool = True
    """Greedy pass@1 on the eval tasks after training."""
    eval_max_new_tokens: int = Field(default=256, ge=1)
    eval_batch_size: int = Field(default=16, ge=1)
    exec_timeout: float = Field(default=4.0, gt=0)
    exec_workers: int = Field(default=2, ge=1)
    executor: ExecutorOptions = ExecutorOptions()
    """Where the final evaluation and the memory's references run: here (default) or on a Ray
    cluster; ``exec_workers`` and ``exec_timeout`` still size the local pool and limit each test."""
    tensorboard: bool = True

    @model_validator(mode="after")
    def _check(self) -> SFTConfig:
        if self.warmup_steps >= self.max_steps and self.lr_schedule != "constant":
            raise ValueError(
                f"warmup_steps ({self.warmup_steps}) must be below max_steps ({self.max_steps}); "
                "lower warmup_steps or use lr_schedule: constant"
            )
        return self

    @property
    def executor_config(self) -> ExecutorConfig:
        """What `codefalcon.execution.open_executor` builds this run's executors from."""
        return self.executor.build(self.exec_workers, self.exec_timeout)


def train_sft(
    config: SFTConfig, progress: bool = True, *, allow_config_change: bool = False
) -> dict[str, Any]:
    """Run (or resume) supervised fine-tuning; returns a summary of the run.

    Resuming under a config that differs from the checkpoint's outside `SFT_MAY_CHANGE_ON_RESUME`
    is refused (`codefalcon.rl.run_dir.ConfigChangedError`) unless ``allow_config_change``.
    """
    out, checkpoint = open_run(
        config.out_dir, config, config.seed, SFT_MAY_CHANGE_ON_RESUME, allow_config_change
    )
    policy = load_trainable_policy(
        config.model, config.dtype, config.lora, checkpoint.model_dir if checkpoint else None, config.device
    )
    model = policy.model
    train_tasks = _load_tasks(config.train)
    prompts = _memory_prompts(policy, train_tasks, out, config) if config.memory_context else None
    train_examples, dropped = _examples(policy, train_tasks, config, prompts)
    if not train_examples:
        raise ValueError(f"no training examples fit max_length={config.max_length} ({dropped} dropped)")
    eval_tasks = config.eval.load() if config.eval else []
    eval_examples = _examples(policy, eval_tasks, config)[0][: config.eval_loss_limit]
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=config.lr, weight_decay=config.weight_decay
    )
    scheduler = _scheduler(optimizer, config)
    step, position = 0, (0, 0)
    if checkpoint is not None:
        load_trainer_state(checkpoint, optimizer, scheduler)
        step, position = checkpoint.step, tuple(checkpoint.state["position"])
        log.warning("resuming from %s (step %d)", checkpoint.path, step)
    metrics = MetricsLog(out, checkpoint.step if checkpoint else None, config.tensorboard)
    batches = _batches(train_examples, config, position)
    per_step = config.micro_batch_size * config.grad_accum
    bar = progress_bar(config.max_steps, step, "sft", progress)
    started, trained_tokens = time.perf_counter(), 0
    model.train()
    while step < config.max_steps:
        if config.max_minutes and time.perf_counter() - started > 60 * config.max_minutes:
            log.warning("max_minutes reached at step %d", step)
            break
        t0 = time.perf_counter()
        group, position = next(batches)
        loss, n_tokens = _accumulate(model, policy.kind, group, config)
        grad_norm = optimizer_step(optimizer, config.max_grad_norm)
        scheduler.step()
        step += 1
        trained_tokens += n_tokens
        record = {
            "loss/train": loss,
            "optim/lr": scheduler.get_last_lr()[0],
            "optim/grad_norm": float(grad_norm),
            "data/answer_tokens": n_tokens,
            "data/epoch": position[0] + position[1] / len(train_examples),
            "time/step_seconds": time.perf_counter() - t0,
        }
        if eval_examples and (step % config.eval_every == 0 or step == config.max_steps):
            record["loss/eval"] = evaluate_loss(model, policy.kind, eval_examples, config)
        metrics.log(step, record)
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{trained_tokens / (time.perf_counter() - started):.0f}")
        if step % config.save_every == 0 or step == config.max_steps:
            _save(out, step, policy, optimizer, scheduler, position, config)
    bar.close()
    last = latest_checkpoint(out / "checkpoints")
    if last is None or last.step != step:  # stopped by max_minutes between two saves
        _save(out, step, policy, optimizer, scheduler, position, config)
    model.eval()
    final_dir = out / "final"
    model.save_pretrained(final_dir)
    policy.tokenizer.save_pretrained(final_dir)
    metrics.close()
    summary: dict[str, Any] = {
        "steps": step,
        "examples": len(train_examples),
        "dropped_too_long": dropped,
        "examples_per_step": per_step,
        "final_model": str(final_dir),
    }
    if config.final_eval and eval_tasks:
        summary["eval"] = _final_eval(policy, eval_tasks, out / "eval", config)
    return summary


def example_loss(model: Any, kind: str, examples: Sequence[Example]) -> tuple[torch.Tensor, int]:
    """Summed answer-token cross-entropy of a padded batch of examples, and the token count.

    The batch goes to the model's device; the loss is on it.
    """
    device = model_device(model)
    input_ids, attention, labels = (t.to(device) for t in collate(examples, pad_id=0))
    if kind == "seq2seq":
        decoder_labels = labels.clone()
        logits = model(input_ids=input_ids, attention_mask=attention, labels=decoder_labels).logits
        return masked_token_cross_entropy(logits, labels, IGNORE_INDEX)
    # The logits at position t predict token t + 1. Only positions from the batch's first answer
    # token on carry loss, so the LM head runs on those alone (a third to a half of the tokens on
    # task prompts: the head is the widest matmul of a small model).
    start = _first_label_position(labels)
    keep = labels.shape[1] - start
    kwargs = {"logits_to_keep": keep} if forward_accepts(model, "logits_to_keep") else {}
    logits = model(input_ids=input_ids, attention_mask=attention, **kwargs).logits[:, -keep:]  # (B, keep, V)
    return masked_token_cross_entropy(logits[:, :-1], labels[:, start + 1 :], IGNORE_INDEX)


def _first_label_position(labels: torch.Tensor) -> int:
    """The position before the first answer token of any row (0 if there is none)."""
    columns = (labels != IGNORE_INDEX).any(dim=0).nonzero()
    return max(0, int(columns[0]) - 1) if len(columns) else 0


def collate(examples: Sequence[Example], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded (B, T) input ids, attention mask and labels (seq2seq labels padded apart)."""
    width = max(len(e.input_ids) for e in examples)
    label_width = max(len(e.labels) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    labels = torch.full((len(examples), label_width), IGNORE_INDEX, dtype=torch.long)
    for b, e in enumerate(examples):
        ids[b, : len(e.input_ids)] = torch.tensor(e.input_ids)
        mask[b, : len(e.input_ids)] = 1
        labels[b, : len(e.labels)] = torch.tensor(e.labels)
    return ids, mask, labels


@torch.no_grad()
def evaluate_loss(model: Any, kind: str, examples: Sequence[Example], config: SFTConfig) -> float:
    """Mean answer-token cross-entropy over ``examples`` (model left in training mode after)."""
    model.eval()
    total, count = 0.0, 0
    device = model_device(model)
    for start in range(0, len(examples), config.micro_batch_size):
        with bf16_autocast(autocast_enabled(config.bf16_autocast, device), device):
            loss, n = example_loss(model, kind, examples[start : start + config.micro_batch_size])
        total, count = total + float(loss), count + n
    model.train()
    return total / max(count, 1)


def _accumulate(model: Any, kind: str, group: list[list[Example]], config: SFTConfig) -> tuple[float, int]:
    """Backward over the micro-batches of one step (see `accumulate_ce`)."""
    return accumulate_ce(model, kind, group, autocast_enabled(config.bf16_autocast, model_device(model)))


def accumulate_ce(
    model: Any,
    kind: str,
    micro_batches: Sequence[Sequence[Example]],
    autocast: bool,
    scale: float = 1.0,
    n_tokens: int | None = None,
) -> tuple[float, int]:
    """Backward of ``scale`` x the answer-token cross-entropy over all ``micro_batches``, each
    normalised by the token count of the whole set (so gradients add up to the full-batch mean);
    returns that mean and the token count. Used by SFT and by CodeRL's supervised step.
    ``n_tokens``: the count to normalise by instead (on several processes, the global batch's:
    this rank's gradient and loss are then its part of the global ones)."""
    if n_tokens is None:
        n_tokens = sum(e.n_answer_tokens for micro in micro_batches for e in micro)
    total = 0.0
    device = model_device(model)
    for micro in micro_batches:
        with bf16_autocast(autocast, device):
            loss_sum, _ = example_loss(model, kind, micro)
        (scale * loss_sum / n_tokens).backward()
        total += float(loss_sum.detach())
    return total / n_tokens, n_tokens


def _batches(
    examples: list[Example], config: SFTConfig, position: tuple[int, int]
) -> Iterator[tuple[list[list[Example]], tuple[int, int]]]:
    """Endless steps of ``grad_accum`` micro-batches, from (epoch, offset); yields the next position."""
    per_step = config.micro_batch_size * config.grad_accum
    micro = config.micro_batch_size
    for index, after in seeded_epochs(len(examples), per_step, f"codefalcon.sft/{config.seed}", position):
        # sorted by length so each micro-batch pads little; the step's loss is the same
        chosen = sorted((examples[i] for i in index), key=lambda e: e.length)
        yield [chosen[i : i + micro] for i in range(0, len(chosen), micro)], after


def _examples(
    policy: Any, tasks: Sequence[Task], config: SFTConfig, prompts: MemoryPrompts | None = None
) -> tuple[list[Example], int]:
    """Tokenized examples that fit ``max_length`` and the model's context, and how many did not.

    Prompts are the ones RL and inference build (`Prompter.base`); with ``prompts``
    (retrieval-aware warm-up, `Prompter.with_context` underneath), a seeded
    ``memory_context.fraction`` of the tasks are prompted with retrieved solutions of other tasks.
    """
    limit = min(config.max_length, policy.max_positions or config.max_length)
    plain = Prompter.with_budget(policy, None)
    kept, dropped = [], 0
    for task in tasks:
        prompt = plain.base(task)
        if prompts is not None and config.memory_context is not None:
            chosen = random.Random(f"codefalcon.sft.memory/{config.seed}/{task.task_id}").random()
            prompt = prompts(task) if chosen < config.memory_context.fraction else prompt
        for solution in task.solutions[: config.max_solutions_per_task]:
            example = encode_example(policy, task, solution, prompt)
            if example.length > limit:
                dropped += 1
            else:
                kept.append(example)
    return kept, dropped


def _memory_prompts(policy: Any, tasks: Sequence[Task], out: Path, config: SFTConfig) -> MemoryPrompts:
    """A store of the training references (verified by running them) to retrieve from."""
    assert config.memory_context is not None
    memory = open_memory(out / "memory.db", config.memory_context.embedder)
    store_references(memory, tasks, config.executor_config)
    budget = min(config.max_length, policy.max_positions or config.max_length) - 32
    return MemoryPrompts(
        policy, memory, config.memory_context.k, budget, config.memory_context.example_filter
    )


def _load_tasks(sources: Sequence[TaskSource]) -> list[Task]:
    return [task for task in load_sources(sources) if task.solutions]


def _scheduler(optimizer: torch.optim.Optimizer, config: SFTConfig) -> Any:
    from transformers import get_scheduler

    name = "constant_with_warmup" if config.lr_schedule == "constant" else config.lr_schedule
    return get_scheduler(
        name, optimizer, num_warmup_steps=config.warmup_steps, num_training_steps=config.max_steps
    )


def _save(
    out: Path,
    step: int,
    policy: Any,
    optimizer: Any,
    scheduler: Any,
    position: tuple[int, int],
    config: SFTConfig,
) -> None:
    state = {"position": list(position), "config": config.model_dump(mode="json")}
    save_checkpoint(
        out / "checkpoints",
        step,
        policy.model,
        policy.tokenizer,
        optimizer,
        scheduler,
        state,
        keep=config.keep_checkpoints,
    )


def _final_eval(policy: Any, tasks: list[Task], out: Path, config: SFTConfig) -> dict[str, Any]:
    from codefalcon.evaluation.policy import evaluate_policy
    from codefalcon.execution import open_executor
    from codefalcon.models import SamplingParams

    params = SamplingParams(temperature=0.0, max_new_tokens=config.eval_max_new_tokens, seed=config.seed)
    with open_executor(config.executor_config) as executor:
        return evaluate_policy(
            policy, tasks, out, params, executor=executor, batch_size=config.eval_batch_size
        )


__all__ = ["SFTConfig", "TaskSource", "accumulate_ce", "collate", "example_loss", "train_sft"]
