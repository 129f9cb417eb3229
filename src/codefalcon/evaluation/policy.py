"""Evaluating a policy end to end: sample programs for tasks, run them, summarise.

This is `codefalcon generate` followed by `codefalcon evaluate` as one library call, used by
recipes for held-out pass@k before and after training. Files land in ``out_dir``:
``samples.jsonl`` (resumable), ``results.jsonl`` and ``summary.json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from codefalcon.evaluation.metrics import summarize
from codefalcon.evaluation.samples import read_samples, write_results
from codefalcon.execution import Executor, ExecutorConfig
from codefalcon.models import GenerationBackend, Policy, Prompt, SamplingParams, generate_samples
from codefalcon.tasks.record import Task


def evaluate_policy(
    policy: Policy,
    tasks: Sequence[Task],
    out_dir: str | Path,
    params: SamplingParams,
    *,
    n: int = 1,
    ks: Sequence[int] = (1,),
    executor: Executor | None = None,
    executor_config: ExecutorConfig | None = None,
    batch_size: int = 16,
    progress: bool = True,
    prompt_for: Callable[[Task], Prompt] | None = None,
    backend: GenerationBackend | None = None,
) -> dict[str, Any]:
    """Sample ``n`` programs per task, run them against the hidden tests, return the summary.

    The summary is `summarize`'s (pass@k, verdicts, per-difficulty tables) plus generation
    figures (``tokens_per_second``, ``samples_truncated``). Pass a running ``executor`` to reuse
    its warm workers; otherwise one is started from ``executor_config`` and closed after.
    ``backend``: the engine that samples (`codefalcon.models.make_backend`; default HF generate
    on ``policy``), e.g. the RL run's own engine after its last ``sync``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    samples_path = out / "samples.jsonl"
    stats = generate_samples(
        policy,
        tasks,
        n,
        params,
        samples_path,
        progress,
        backend=backend,
        batch_size=batch_size,
        prompt_for=prompt_for,
    )
    by_id = {task.task_id: task for task in tasks}
    rows = [s for s in read_samples(samples_path, by_id) if s.completion_id < n]
    jobs = [(by_id[s.task_id].runnable(s.program), by_id[s.task_id].tests) for s in rows]
    if executor is None:
        with Executor(executor_config or ExecutorConfig()) as ex:
            results = ex.run_batch(jobs)
    else:
        results = executor.run_batch(jobs)
    write_results(out / "results.jsonl", rows, results)
    per_task: dict[str, list[Any]] = {task.task_id: [] for task in tasks}
    for sample, result in zip(rows, results, strict=True):
        per_task[sample.task_id].append(result)
    summary = summarize(per_task, ks, difficulty_of={t.task_id: t.difficulty for t in tasks})
    summary["generation"] = {
        "tokens_per_second": stats.tokens_per_second,
        "samples_truncated": stats.samples_truncated,
        "samples_written": stats.samples_written,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary
