"""`codefalcon evaluate`: run samples against a benchmark's tests, report pass@k and verdicts."""

from __future__ import annotations

import json
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from codefalcon.cli.checks import at_least, input_file, load_tasks, output_file, positive
from codefalcon.cli.common import (
    Benchmark,
    Compare,
    LanguageOption,
    Sandbox,
    SourceOption,
    TargetOption,
    fail,
    parse_ks,
    pct,
    progress,
)
from codefalcon.evaluation.paired import paired_gain
from codefalcon.evaluation.samples import SamplesError, read_results, solved_tasks
from codefalcon.evaluation.summary import EvalSummary


def evaluate(
    benchmark: Annotated[Benchmark, typer.Option(help="Which benchmark the samples are for.")],
    samples: Annotated[
        Path,
        typer.Option(
            help='Samples JSONL in human-eval format: {"task_id", "completion"} (appended to the '
            'task prompt) or {"task_id", "solution"} (a whole program). The word "canonical" '
            "evaluates the benchmark's reference solutions instead (a check of the harness)."
        ),
    ],
    data: Annotated[
        Path | None,
        typer.Option(
            help="Benchmark data: MBPP jsonl/json, APPS folder, tasks jsonl, a humanevalx_*.jsonl.gz "
            "file (or the folder holding the humanevalx files, also for translate). "
            "HumanEval defaults to the installed human-eval package."
        ),
    ] = None,
    language: LanguageOption = None,
    source: SourceOption = None,
    target: TargetOption = None,
    split: Annotated[str | None, typer.Option(help="Split to load (MBPP/APPS), e.g. test.")] = None,
    k: Annotated[str, typer.Option(help="Comma-separated k values for pass@k.")] = "1,10,100",
    out: Annotated[
        Path | None, typer.Option(help="Per-sample results JSONL \\[default: SAMPLES_results.jsonl].")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds per test.")] = 4.0,
    workers: Annotated[int, typer.Option(help="Parallel sandbox workers (one per core).")] = 2,
    sandbox: Annotated[
        Sandbox, typer.Option(help="auto (bubblewrap if it works, else rlimits only), bwrap or none.")
    ] = Sandbox.auto,
    compare: Annotated[
        Compare, typer.Option(help="Stdout comparison: exact, tokens or apps.")
    ] = Compare.exact,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON summary object as the last line of stdout.")
    ] = False,
    report: Annotated[
        Path | None,
        typer.Option(help="Also write a self-contained HTML report (summary and every task's programs)."),
    ] = None,
    baseline: Annotated[
        Path | None,
        typer.Option(
            help="An earlier results JSONL of the same tasks (e.g. before training): also print the paired "
            "gain in pass@1 of one greedy sample per task (with several, a task is solved if any passed), "
            "its 95% bootstrap interval and McNemar's p."
        ),
    ] = None,
) -> None:
    """Run samples against a benchmark's tests and report pass@k and verdicts."""
    from codefalcon.evaluation import read_samples, summarize, write_results
    from codefalcon.execution import Executor, ExecutorConfig
    from codefalcon.tasks.registry import normalize_task_id

    # Everything that could stop the command is checked before the first program runs.
    ks = parse_ks(k)
    positive("--timeout", timeout)
    at_least("--workers", workers, 1)
    canonical = str(samples) == "canonical"
    if not canonical:
        input_file("--samples", samples)
    results_path = out or samples.with_name(samples.name.split(".jsonl")[0] + "_results.jsonl")
    inputs = {"--samples": None if canonical else samples, "--data": data}
    output_file("--out", results_path, inputs)
    output_file("--report", report, {**inputs, "--out": results_path}, creates_folder=True)
    tasks = load_tasks(benchmark.value, data, split, language, source, target)
    by_id = {t.task_id: t for t in tasks}
    if canonical:
        rows = _canonical_samples(tasks)
    else:
        try:
            rows = read_samples(samples, by_id, partial(normalize_task_id, benchmark.value))
        except (SamplesError, OSError, ValueError) as e:  # each names the file and line
            raise fail(f"--samples: {e}") from None
    before = _baseline(baseline, results_path, {s.task_id for s in rows})
    config = ExecutorConfig(workers=workers, timeout=timeout, sandbox=sandbox.value, compare=compare.value)
    jobs = [(by_id[s.task_id].runnable(s.program), by_id[s.task_id].tests) for s in rows]
    with Executor(config) as ex, progress(len(jobs), "evaluating") as bar:
        results = ex.run_batch(jobs, progress=bar.update)
    per_task: dict[str, list[Any]] = {}
    for s, r in zip(rows, results, strict=True):
        per_task.setdefault(s.task_id, []).append(r)
    summary = summarize(per_task, ks, difficulty_of={tid: by_id[tid].difficulty for tid in per_task})
    typed = EvalSummary.from_dict(summary)
    flat: dict[str, Any] = {"n_tasks": typed.n_tasks, "n_samples": typed.n_samples}
    flat.update(typed.pass_at_k_values())
    flat["verdicts"] = typed.verdicts
    flat["isolation"] = ex.isolation
    write_results(results_path, rows, results)
    flat["results"] = str(results_path)
    print_summary(typed, results_path)
    if before is not None:
        gain = paired_gain(before, solved_tasks(read_results(results_path)))
        Console(stderr=True).print(f"against {baseline}: {gain.describe()}")
        flat["paired"] = asdict(gain)
    if report is not None:
        from codefalcon.evaluation.report import write_evaluation_report

        title = f"{benchmark.value}{f' {split}' if split else ''}: {samples.name}"
        path = write_evaluation_report(
            summary, None if canonical else samples, results_path, report, title=title
        )
        Console(stderr=True).print(f"report: {path}")
    if as_json:
        print(json.dumps({**flat, "summary": summary}))


def _baseline(path: Path | None, results_path: Path, task_ids: set[str]) -> dict[str, bool] | None:
    """Task id -> solved in the ``--baseline`` results, checked before any program runs."""
    if path is None:
        return None
    input_file("--baseline", path)
    if path.resolve() == results_path.resolve():
        raise fail(f"--baseline {path} is the file this evaluation writes (--out); pass the earlier one")
    try:
        solved = solved_tasks(read_results(path))
    except (SamplesError, OSError) as e:
        raise fail(f"--baseline: {e}") from None
    common = len(task_ids & set(solved))
    if common < 2:
        raise fail(f"--baseline {path}: {common} task(s) in common with --samples; a paired gain needs 2")
    if common < len(task_ids):
        err_console = Console(stderr=True)
        err_console.print(f"--baseline {path}: {len(task_ids) - common} task(s) of --samples are not in it")
    return solved


def _canonical_samples(tasks: list[Any]) -> list[Any]:
    """The benchmark's reference solutions as samples: checks the harness on this machine."""
    from codefalcon.evaluation import Sample

    rows = [Sample(t.task_id, t.solutions[0], i + 1, 0, {}) for i, t in enumerate(tasks) if t.solutions]
    if not rows:
        raise fail("--samples canonical: this benchmark has no reference solutions")
    return rows


def print_summary(summary: EvalSummary, results_path: Path) -> None:
    """The pass@k, accuracy, verdict and per-difficulty tables of one evaluation, on stderr."""
    console = Console(stderr=True)
    table = Table(title=f"{summary.n_tasks} tasks, {summary.n_samples} samples")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, est in summary.pass_at_k.items():
        table.add_row(name, pct(est.value) if est.value is not None else f"n/a ({est.reason})")
    if summary.strict_accuracy is not None:
        table.add_row("strict accuracy", pct(summary.strict_accuracy))
        table.add_row("avg test pass rate", pct(summary.avg_pass_rate))
    for verdict, n in summary.verdicts.items():
        if n:
            table.add_row(f"verdict: {verdict}", str(n))
    console.print(table)
    if len(summary.by_difficulty) > 1:
        t = Table(title="by difficulty")
        for col in ("difficulty", "tasks", "pass@1", "strict acc", "avg pass rate"):
            t.add_column(col)
        for name, row in summary.by_difficulty.items():
            t.add_row(
                name,
                str(row.n_tasks),
                pct(row.pass_at(1)),
                pct(row.strict_accuracy),
                pct(row.avg_pass_rate),
            )
        console.print(t)
    console.print(f"per-sample results: {results_path}")


def report(
    run_dir: Annotated[Path, typer.Argument(help="A run folder of `codefalcon train`, `sft` or `run`.")],
    out: Annotated[
        Path | None, typer.Option(help="Where to write the HTML \\[default: RUN_DIR/report.html].")
    ] = None,
) -> None:
    """Write a run's self-contained HTML report: pass@k before/after, curves, tables, every task."""
    from codefalcon.evaluation.report import RUN_FILES, is_run_dir, write_run_report

    if not run_dir.is_dir():
        raise fail(f"RUN_DIR: no such folder: {run_dir}")
    if not is_run_dir(run_dir):
        raise fail(f"RUN_DIR {run_dir}: no run in this folder (none of {', '.join(RUN_FILES)})")
    output_file("--out", out, {}, creates_folder=True)
    path = write_run_report(run_dir, out)
    Console(stderr=True).print(f"report: {path}")
    print(path)
