"""`codefalcon tasks ...`: make and inspect task files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from codefalcon.cli.common import err, fail

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
) -> None:
    """Generate procedural Python function tasks with reference solutions and hidden tests."""
    from codefalcon.tasks.synth import synth_main

    if n < 1:
        raise fail("--n must be at least 1")
    if not 0.0 <= test_fraction < 1.0:
        raise fail("--test-fraction must be in [0, 1)")
    try:
        stats = synth_main(n=n, seed=seed, out=out, test_fraction=test_fraction, holdout=holdout)
    except ValueError as e:
        raise fail(str(e)) from None
    err.print(stats)
