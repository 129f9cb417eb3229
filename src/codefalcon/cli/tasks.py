"""`codefalcon tasks ...`: make and inspect task files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from codefalcon.cli.checks import load_tasks, output_file
from codefalcon.cli.common import Benchmark, LanguageOption, SourceOption, TargetOption, err, fail

app = typer.Typer(help="Make and inspect task files.", no_args_is_help=True)


@app.command("synth")
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
    form: Annotated[
        str,
        typer.Option(
            help="humaneval: a signature and docstring to complete; mbpp: an English request "
            "and assert tests, as MBPP writes its problems (to mix with MBPP train)."
        ),
    ] = "humaneval",
) -> None:
    """Generate procedural Python function tasks with reference solutions and hidden tests."""
    from codefalcon.tasks.synth import synth_main

    if n < 1:
        raise fail("--n must be at least 1")
    if not 0.0 <= test_fraction < 1.0:
        raise fail("--test-fraction must be in [0, 1)")
    try:
        stats = synth_main(n=n, seed=seed, out=out, test_fraction=test_fraction, holdout=holdout, form=form)
    except ValueError as e:
        raise fail(str(e)) from None
    err.print(stats)


@app.command("export")
def tasks_export(
    benchmark: Annotated[Benchmark, typer.Option(help="Which benchmark's tasks to write.")],
    out: Annotated[Path, typer.Option(help="Tasks JSONL to write (.gz to compress); replaced if it exists.")],
    data: Annotated[Path | None, typer.Option(help="Benchmark data, as for `codefalcon evaluate`.")] = None,
    split: Annotated[str | None, typer.Option(help="Split to keep (MBPP/APPS/jsonl); default all.")] = None,
    language: LanguageOption = None,
    source: SourceOption = None,
    target: TargetOption = None,
) -> None:
    """Write a benchmark's tasks in codefalcon's tasks JSONL format (docs/tasks.md).

    The way to train on benchmarks that `sft` and `train` configs cannot name yet (humanevalx,
    translate): export them, then use {benchmark: jsonl, path: OUT, split: null} in the config.
    """
    from codefalcon.tasks.jsonl import save_tasks_jsonl

    output_file("--out", out, {"--data": data})
    tasks = load_tasks(benchmark.value, data, split, language, source, target)
    save_tasks_jsonl(tasks, out)
    err.print(f"{len(tasks)} {benchmark.value} tasks -> {out}")
    print(out)
