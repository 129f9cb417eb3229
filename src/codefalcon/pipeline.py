"""`codefalcon run`: the whole FALCON pipeline as one resumable job.

Stages, each writing under ``out_dir`` and skipped once complete (``<stage>.done.json`` holds its
summary), so an interrupted run continues where it stopped:

1. ``tasks``: generate the task file (or use the given benchmark sources);
2. ``model``: build the tiny model (or use the given policy);
3. ``sft``: supervised warm-up (`codefalcon.rl.sft`; resumes from its checkpoints);
4. ``rl``: RL with memory (`codefalcon.rl.train`; its ``eval/before`` is the baseline evaluation
   and ``eval/after`` the final one; resumes from its checkpoints);
5. ``ablation``: inference strategies on held-out tasks with the same budget (optional; resumes
   by strategy);
6. ``report``: one self-contained HTML file.

No stage stops on a clock, only on step counts, so a killed and resumed run ends with the same
result as an uninterrupted one with the same seed. After the RL stage the held-out gain is
printed with its standard error (`paired_gain`), so a reader can tell a gain from noise.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from codefalcon.configs import StrictModel, config_from_mapping, dump_config
from codefalcon.evaluation.paired import PairedGain, paired_gain
from codefalcon.evaluation.samples import read_results, solved_tasks
from codefalcon.evaluation.summary import EvalSummary
from codefalcon.rl.sft import SFTConfig
from codefalcon.rl.train_config import TrainConfig
from codefalcon.tasks.source import TaskSource

log = logging.getLogger(__name__)

DEFAULT_CONFIG = Path(__file__).with_name("presets") / "run-tiny.yaml"
"""The embedded default: the tiny model on generated tasks whose warm-up references carry the print
bug, sized for at most 10 minutes on 2 free AVX2-only CPU cores in fp32 (measured from a fresh
clone: 3.4-4.4 minutes on an AMD EPYC Zen 3 at 2.45 GHz; the same stages took 9.5 minutes on a 2.0 GHz
EPYC; figures in README and docs/rl.md)."""
WARMUP_TASKS = "warmup.jsonl"
"""The warm-up's copy of the train tasks, written when ``synth.print_bug`` rewrites references."""


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
    print_bug: float = Field(default=0.0, ge=0, le=1)
    """Share of the warm-up's references that print their answer instead of returning it
    (`codefalcon.tasks.synth.print_answer`): a corpus with a common bug that only the tests
    reveal. The RL stage and every evaluation use the tasks' correct tests; 0 keeps them clean."""


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
        if self.synth is not None and self.synth.print_bug > 0:
            train = TaskSource(benchmark="jsonl", path=str(out / WARMUP_TASKS))
        fixed = {"model": str(out / "model"), "train": [train.model_dump()], "out_dir": str(out / "sft")}
        fixed["eval"] = eval_source.model_dump() if eval_source else None
        return config_from_mapping(SFTConfig, {"seed": self.seed, **(self.sft or {}), **fixed}, "sft")

    def rl_config(self, out: Path, model: str) -> TrainConfig:
        train, eval_source = self.sources(out)
        fixed = {"model": model, "train": train.model_dump(), "out_dir": str(out / "rl")}
        fixed["eval"] = eval_source.model_dump() if eval_source else None
        return config_from_mapping(TrainConfig, {"seed": self.seed, **(self.rl or {}), **fixed}, "rl")


def run_pipeline(
    config: RunConfig, say: Callable[[str], None] = log.warning, *, allow_config_change: bool = False
) -> dict[str, Any]:
    """Run every stage not yet complete; returns each stage's summary and the report's path.

    A training stage resumed under a config that differs from its checkpoint's is refused, naming
    the keys, unless ``allow_config_change`` (`codefalcon.rl.run_dir`).
    """
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(dump_config(config), encoding="utf-8")
    summaries: dict[str, Any] = {}

    def stage(name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        done = out / f"{name}.done.json"
        say(f"[{name}] already complete, skipped" if done.is_file() else f"[{name}] running")
        summaries[name] = _once(done, fn)
        return summaries[name]

    if config.synth is not None:
        stage("tasks", lambda: _synth(config, out))
    model = config.model or str(out / "model")
    if config.model is None:
        stage("model", lambda: _build_tiny(config, out))
    if config.sft is not None:
        from codefalcon.rl.sft import train_sft

        summary = stage(
            "sft", lambda: _plain(train_sft(config.sft_config(out), allow_config_change=allow_config_change))
        )
        model = summary["final_model"]
    if config.rl is not None:
        from codefalcon.rl.train import train_rl

        rl_config = config.rl_config(out, model)
        summary = stage("rl", lambda: train_rl(rl_config, allow_config_change=allow_config_change))
        model = summary["final_model"]
        gain = rl_gain(out / "rl" / "eval")
        if gain is not None:
            summaries["rl_gain"] = asdict(gain)
            say(f"[rl] {gain.describe()}")
    if config.ablation is not None:
        stage("ablation", lambda: _ablation(config, out, model))
    from codefalcon.evaluation.report import write_run_report

    report = write_run_report(out / "rl" if config.rl is not None else out, out / "report.html")
    return {**summaries, "report": str(report)}


def rl_gain(eval_dir: Path) -> PairedGain | None:
    """`paired_gain` of the RL stage's ``before`` and ``after`` greedy evaluations (None if absent)."""
    solved = []
    for name in ("before", "after"):
        path = eval_dir / name / "results.jsonl"
        if not path.is_file():
            return None
        solved.append(solved_tasks(read_results(path)))
    if len(set(solved[0]) & set(solved[1])) < 2:
        return None
    return paired_gain(solved[0], solved[1])


def _synth(config: RunConfig, out: Path) -> dict[str, Any]:
    from codefalcon.tasks.synth import synth_main

    synth = config.synth
    assert synth is not None
    summary = synth_main(synth.n, config.seed, out / "tasks.jsonl", synth.test_fraction, synth.holdout)
    if synth.print_bug > 0:
        from codefalcon.tasks.jsonl import load_tasks_jsonl, save_tasks_jsonl
        from codefalcon.tasks.synth import with_print_bug

        train = [task for task in load_tasks_jsonl(out / "tasks.jsonl") if task.split == "train"]
        warmup = with_print_bug(train, synth.print_bug, config.seed)
        save_tasks_jsonl(warmup, out / WARMUP_TASKS)
        changed = sum(a.solutions != b.solutions for a, b in zip(train, warmup, strict=True))
        summary["warmup"] = {"out": str(out / WARMUP_TASKS), "print_bug": changed, "n": len(warmup)}
    return summary


def _build_tiny(config: RunConfig, out: Path) -> dict[str, Any]:
    from codefalcon.models import build_tiny_model

    info = build_tiny_model(out / "model", seed=config.seed, **config.tiny.model_dump())  # type: ignore[arg-type]
    return {"out": str(info.out_dir), "n_params": info.n_params, "vocab_size": info.vocab_size}


def _ablation(config: RunConfig, out: Path, model: str) -> dict[str, Any]:
    """Each strategy on the same held-out tasks and budget; ``ablation.json`` for the report."""
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
        # each strategy is a unit of resumption: a killed ablation keeps the strategies it finished
        results[strategy] = _once(
            out / "ablation" / f"{strategy}.done.json",
            partial(_solve, config, out, model, eval_source, strategy, memory),
        )
    ablation = {"strategies": results, "budget": f"{options.budget} generations per task"}
    target = out / "rl" if config.rl is not None else out
    target.mkdir(parents=True, exist_ok=True)
    _write_atomic(target / "ablation.json", json.dumps(ablation, indent=2))
    return ablation


def _solve(
    config: RunConfig, out: Path, model: str, eval_source: TaskSource, strategy: str, memory: Path
) -> dict[str, Any]:
    """One ablation strategy's figures (`codefalcon.inference.solve_main`; samples under ablation/)."""
    from codefalcon.inference import solve_main

    options = config.ablation
    assert options is not None
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
    return {
        "n_tasks": summary["n_tasks"],
        "pass_at_k": {"pass@1": {"value": summary["pass@1"]}},
        "n_at_k": summary["n_at_k"],
        "generations": summary["generations"],
    }


def _once(done: Path, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``fn()``'s summary, computed once: read back from ``done`` if a run already wrote it, else
    computed and written there atomically (the unit a killed run resumes by)."""
    if done.is_file():
        return json.loads(done.read_text())
    summary = fn()
    _write_atomic(done, json.dumps(summary, indent=2, default=str))
    return summary


def _plain(summary: dict[str, Any]) -> dict[str, Any]:
    """A recipe summary without the bulky per-task tables (they stay in the stage's folder)."""
    evaluation = summary.get("eval")
    if isinstance(evaluation, dict) and "pass_at_k" in evaluation:
        summary = {**summary, "eval": EvalSummary.from_dict(evaluation, "sft: eval").pass_at_k_values()}
    return summary


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
