"""`codefalcon run`: the whole FALCON pipeline as one resumable job.

Stages, each writing under ``out_dir`` and skipped once complete (``<stage>.done.json`` holds its
summary), so an interrupted run continues where it stopped:

1. ``tasks``: generate the task file (or use the given benchmark sources);
2. ``model``: build the tiny model (or use the given policy);
3. ``sft``: supervised warm-up (`codefalcon.rl.sft`; resumes from its checkpoints);
4. ``rl``: RL with memory (`codefalcon.rl.train`; its ``eval/before`` is the baseline evaluation
   and ``eval/after`` the final one; resumes from its checkpoints);
5. ``ablation``: inference strategies on held-out tasks with the same budget (optional);
6. ``report``: one self-contained HTML file.

No stage stops on a clock, only on step counts, so a killed and resumed run ends with the same
result as an uninterrupted one with the same seed. After the RL stage the held-out gain is
printed with its standard error (`paired_gain`), so a reader can tell a gain from noise.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from codefalcon.configs import StrictModel, config_from_mapping, dump_config
from codefalcon.rl.sft import SFTConfig, TaskSource
from codefalcon.rl.train_config import TrainConfig

log = logging.getLogger(__name__)

DEFAULT_CONFIG = Path(__file__).with_name("presets") / "run-tiny.yaml"
"""The embedded default: the tiny model on generated tasks, sized for at most 10 minutes on 2 free
AVX2-only CPU cores in fp32 (measured figures: the preset's header, README and docs/rl.md)."""


class TinyModelOptions(StrictModel):
    """A tiny from-scratch model (`codefalcon model build-tiny`)."""

    arch: Literal["gpt2", "llama", "t5"] = "llama"
    """llama: rotary positions, which carry over to prompts longer than the warm-up's (GPT-2's
    learned positions do not: its pass@1 drops to 0 behind 120 tokens of unrelated code)."""
    n_layer: int = Field(default=4, ge=1)
    n_embd: int = Field(default=256, ge=8)
    n_head: int = Field(default=4, ge=1)
    n_positions: int = Field(default=512, ge=64)
    vocab_size: int = Field(default=8000, ge=300)


class SynthOptions(StrictModel):
    """Procedurally generated tasks (`codefalcon tasks synth`)."""

    n: int = Field(default=4000, ge=10)
    test_fraction: float = Field(default=0.1, gt=0, lt=1)
    holdout: str = "instance"


class AblationOptions(StrictModel):
    """Inference strategies compared on held-out tasks with the same generation budget."""

    strategies: list[str] = Field(default_factory=lambda: ["sample", "repair", "falcon"])
    budget: int = Field(default=2, ge=1)
    limit: int = Field(default=50, ge=1)
    max_new_tokens: int = Field(default=96, ge=1)


class RunConfig(StrictModel):
    """Options of `codefalcon run` (YAML keys; each can be overridden as key=value)."""

    out_dir: str = "runs/codefalcon"
    seed: int = 0
    model: str | None = None
    """A policy to start from (folder, .gguf, short name); None builds the tiny model."""
    tiny: TinyModelOptions = TinyModelOptions()
    synth: SynthOptions | None = SynthOptions()
    """Generated tasks; set to null and give ``train``/``eval`` to use a benchmark instead."""
    train: TaskSource | None = None
    eval: TaskSource | None = None
    eval_limit: int | None = Field(default=200, ge=1)
    """Held-out tasks used by every evaluation (the first N)."""
    sft: dict[str, Any] | None = None
    """`codefalcon sft` options (model, data and out_dir are filled in); null skips the stage."""
    rl: dict[str, Any] | None = None
    """`codefalcon train` options (model, data and out_dir are filled in); null skips the stage."""
    ablation: AblationOptions | None = AblationOptions()

    @model_validator(mode="after")
    def _check(self) -> RunConfig:
        if self.synth is None and self.train is None:
            raise ValueError("give either synth (generated tasks) or train (a benchmark source)")
        if self.sft is not None:
            self.sft_config(Path(self.out_dir))
        if self.rl is not None:
            self.rl_config(Path(self.out_dir), "model")
        return self

    def sources(self, out: Path) -> tuple[TaskSource, TaskSource | None]:
        if self.synth is not None:
            path = str(out / "tasks.jsonl")
            return TaskSource(benchmark="jsonl", path=path), TaskSource(
                benchmark="jsonl", path=path, split="test", limit=self.eval_limit
            )
        assert self.train is not None
        return self.train, self.eval

    def sft_config(self, out: Path) -> SFTConfig:
        train, eval_source = self.sources(out)
        fixed = {"model": str(out / "model"), "train": [train.model_dump()], "out_dir": str(out / "sft")}
        fixed["eval"] = eval_source.model_dump() if eval_source else None
        return config_from_mapping(SFTConfig, {"seed": self.seed, **(self.sft or {}), **fixed}, "sft")

    def rl_config(self, out: Path, model: str) -> TrainConfig:
        train, eval_source = self.sources(out)
        fixed = {"model": model, "train": train.model_dump(), "out_dir": str(out / "rl")}
        fixed["eval"] = eval_source.model_dump() if eval_source else None
        return config_from_mapping(TrainConfig, {"seed": self.seed, **(self.rl or {}), **fixed}, "rl")


def run_pipeline(config: RunConfig, say: Callable[[str], None] = log.warning) -> dict[str, Any]:
    """Run every stage not yet complete; returns each stage's summary and the report's path."""
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(dump_config(config), encoding="utf-8")
    summaries: dict[str, Any] = {}

    def stage(name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        done = out / f"{name}.done.json"
        if done.is_file():
            say(f"[{name}] already complete, skipped")
            summaries[name] = json.loads(done.read_text())
            return summaries[name]
        say(f"[{name}] running")
        summaries[name] = fn()
        _write_atomic(done, json.dumps(summaries[name], indent=2, default=str))
        return summaries[name]

    if config.synth is not None:
        stage("tasks", lambda: _synth(config, out))
    model = config.model or str(out / "model")
    if config.model is None:
        stage("model", lambda: _build_tiny(config, out))
    if config.sft is not None:
        from codefalcon.rl.sft import train_sft

        summary = stage("sft", lambda: _plain(train_sft(config.sft_config(out))))
        model = summary["final_model"]
    if config.rl is not None:
        from codefalcon.rl.train import train_rl

        model = stage("rl", lambda: train_rl(config.rl_config(out, model)))["final_model"]
        gain = rl_gain(out / "rl" / "eval")
        if gain is not None:
            summaries["rl_gain"] = asdict(gain)
            say(f"[rl] {gain.describe()}")
    if config.ablation is not None:
        stage("ablation", lambda: _ablation(config, out, model))
    from codefalcon.evaluation.report import write_run_report

    report = write_run_report(out / "rl" if config.rl is not None else out, out / "report.html")
    return {**summaries, "report": str(report)}


@dataclass(frozen=True)
class PairedGain:
    """Held-out greedy pass@1 before and after a stage on the same tasks, with standard errors."""

    n_tasks: int
    before: float
    after: float
    gain: float
    gain_se: float
    """Paired SE of the gain: std(after_i - before_i, ddof=1) / sqrt(n) over the tasks."""
    before_se: float
    """Binomial SE of each pass@1: sqrt(p (1 - p) / n)."""
    after_se: float
    only_before: int
    """Tasks solved before and not after (and ``only_after`` the reverse)."""
    only_after: int

    def describe(self) -> str:
        return (
            f"held-out pass@1 {self.before:.1%} -> {self.after:.1%} on {self.n_tasks} tasks "
            f"(binomial SE {self.before_se:.1%} / {self.after_se:.1%}); gain {self.gain:+.1%} "
            f"+- {self.gain_se:.1%} paired SE ({self.only_after} tasks solved only after, "
            f"{self.only_before} only before)"
        )


def paired_gain(before: Mapping[str, bool], after: Mapping[str, bool]) -> PairedGain:
    """The gain of pass@1 from ``before`` to ``after`` (task id -> solved) on their common tasks.

    Example: 4 tasks, before [1, 0, 0, 1], after [1, 1, 1, 0]: the differences [0, 1, 1, -1] have
    mean 0.25 (the gain) and sample variance (0.0625 + 0.5625 + 0.5625 + 1.5625) / 3 = 0.9167, so
    the paired SE is sqrt(0.9167 / 4) = 0.4787. Pairing removes the between-task variance that two
    independent binomial SEs (here sqrt(0.5 x 0.5 / 4) = 0.25 and sqrt(0.75 x 0.25 / 4) = 0.2165)
    would count twice when most tasks keep their verdict.
    """
    tasks = sorted(set(before) & set(after))
    n = len(tasks)
    if n < 2:
        raise ValueError(f"need at least 2 common tasks for a standard error, got {n}")
    diffs = [int(after[t]) - int(before[t]) for t in tasks]
    p0 = sum(before[t] for t in tasks) / n
    p1 = sum(after[t] for t in tasks) / n
    mean = sum(diffs) / n
    var = sum((d - mean) ** 2 for d in diffs) / (n - 1)
    return PairedGain(
        n_tasks=n,
        before=p0,
        after=p1,
        gain=mean,
        gain_se=math.sqrt(var / n),
        before_se=math.sqrt(p0 * (1 - p0) / n),
        after_se=math.sqrt(p1 * (1 - p1) / n),
        only_before=sum(d < 0 for d in diffs),
        only_after=sum(d > 0 for d in diffs),
    )


def rl_gain(eval_dir: Path) -> PairedGain | None:
    """`paired_gain` of the RL stage's ``before`` and ``after`` greedy evaluations (None if absent)."""
    solved = []
    for name in ("before", "after"):
        path = eval_dir / name / "results.jsonl"
        if not path.is_file():
            return None
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
        by_task: dict[str, bool] = {}
        for row in rows:  # greedy: one completion per task; any passing one counts as solved
            by_task[row["task_id"]] = by_task.get(row["task_id"], False) or bool(row["passed"])
        solved.append(by_task)
    if len(set(solved[0]) & set(solved[1])) < 2:
        return None
    return paired_gain(solved[0], solved[1])


def _synth(config: RunConfig, out: Path) -> dict[str, Any]:
    from codefalcon.tasks.synth import synth_main

    synth = config.synth
    assert synth is not None
    return synth_main(synth.n, config.seed, out / "tasks.jsonl", synth.test_fraction, synth.holdout)


def _build_tiny(config: RunConfig, out: Path) -> dict[str, Any]:
    from codefalcon.models import build_tiny_model

    info = build_tiny_model(out / "model", seed=config.seed, **config.tiny.model_dump())  # type: ignore[arg-type]
    return {"out": str(info.out_dir), "n_params": info.n_params, "vocab_size": info.vocab_size}


def _ablation(config: RunConfig, out: Path, model: str) -> dict[str, Any]:
    """Each strategy on the same held-out tasks and budget; ``ablation.json`` for the report."""
    from codefalcon.inference import solve_main

    options = config.ablation
    assert options is not None
    _, eval_source = config.sources(out)
    if eval_source is None:
        return {"skipped": "no eval tasks"}
    memory = out / "rl" / "memory.db"
    results: dict[str, Any] = {}
    for strategy in options.strategies:
        if strategy == "falcon" and not memory.is_file():
            continue  # falcon inference needs the long-term memory that RL with memory wrote
        summary = solve_main(
            {
                "model": model,
                "benchmark": eval_source.benchmark,
                "data": eval_source.path,
                "split": eval_source.split,
                "limit": options.limit,
                "strategy": strategy,
                "budget": options.budget,
                "max_new_tokens": options.max_new_tokens,
                "seed": config.seed,
                "memory": str(memory) if strategy == "falcon" else None,
                "out": str(out / "ablation" / f"{strategy}.jsonl"),
            }
        )
        results[strategy] = {
            "n_tasks": summary["n_tasks"],
            "pass_at_k": {"pass@1": {"value": summary["pass@1"]}},
            "n_at_k": summary["n_at_k"],
            "generations": summary["generations"],
        }
    ablation = {"strategies": results, "budget": f"{options.budget} generations per task"}
    target = out / "rl" if config.rl is not None else out
    target.mkdir(parents=True, exist_ok=True)
    _write_atomic(target / "ablation.json", json.dumps(ablation, indent=2))
    return ablation


def _plain(summary: dict[str, Any]) -> dict[str, Any]:
    """A recipe summary without the bulky per-task tables (they stay in the stage's folder)."""
    evaluation = summary.get("eval")
    if isinstance(evaluation, dict) and "pass_at_k" in evaluation:
        summary = {**summary, "eval": {k: v["value"] for k, v in evaluation["pass_at_k"].items()}}
    return summary


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
