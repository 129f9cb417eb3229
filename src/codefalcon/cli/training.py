"""`codefalcon sft` (and later `train`): recipes driven by a YAML config plus key=value overrides."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from codefalcon.cli.common import err, fail, print_result

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML config file (see configs/ in the repository)."),
]
OverridesArgument = Annotated[
    list[str] | None,
    typer.Argument(
        help="Overrides as key=value, dotted for sections: max_steps=200 lora.r=16.", show_default=False
    ),
]
PrintOption = Annotated[bool, typer.Option("--print-config", help="Print the resolved config and exit.")]


def sft(
    config: ConfigOption = None, overrides: OverridesArgument = None, print_config: PrintOption = False
) -> None:
    """Supervised warm-up: fine-tune a policy on reference solutions (CodeRL's first stage).

    Loss on answer tokens only, gradient accumulation, warm-up + cosine LR, held-out loss,
    checkpoints that resume exactly (run it again with the same out_dir after an interrupt),
    and a final greedy pass@1 on the eval tasks with a per-difficulty table.
    """
    from codefalcon.rl.sft import SFTConfig, train_sft

    summary = run_recipe(SFTConfig, train_sft, config, overrides or [], print_config)
    if summary is not None:
        _print_run_summary(summary)


def _print_run_summary(summary: dict) -> None:
    from codefalcon.cli.evaluate import print_summary

    evaluation = summary.pop("eval", None)
    err.print(summary)
    if evaluation is not None:
        print_summary(evaluation, Path(summary["final_model"]).parent / "eval" / "results.jsonl")
        summary["eval"] = {name: est["value"] for name, est in evaluation["pass_at_k"].items()}
    print(json.dumps(summary))


def train(
    config: ConfigOption = None,
    overrides: OverridesArgument = None,
    algo: Annotated[
        str | None, typer.Option(help="coderl, ppo, grpo or rloo (overrides the config's algo).")
    ] = None,
    print_config: PrintOption = False,
) -> None:
    """RL fine-tuning from execution feedback: sample -> execute -> reward -> update.

    One loop for CodeRL (critic-weighted policy gradient vs a greedy baseline, alternating with
    CE), PPO (value head, GAE, clipped losses, adaptive KL) and GRPO / RLOO (group-relative
    advantages, clip-higher, token-level loss). Greedy held-out pass@1 before and after; metrics
    in metrics.jsonl and TensorBoard; checkpoints resume exactly after a kill.
    """
    from codefalcon.rl.train import train_rl
    from codefalcon.rl.train_config import TrainConfig

    extra = [f"algo={algo}"] if algo else []
    summary = run_recipe(TrainConfig, train_rl, config, [*(overrides or []), *extra], print_config)
    if summary is not None:
        print_result(summary)


def run_recipe(
    model: type, recipe: Callable[[Any], dict], path: Path | None, overrides: list[str], dry: bool
):
    """Load and print the config, then run ``recipe`` on it (None with --print-config)."""
    from codefalcon.configs import ConfigError, dump_config, load_config

    try:
        cfg = load_config(model, path, overrides)
    except ConfigError as e:
        raise fail(str(e)) from None
    err.print(dump_config(cfg), highlight=False)
    if dry:
        return None
    try:
        return recipe(cfg)
    except (FileNotFoundError, ValueError) as e:
        raise fail(str(e)) from None


def run(
    arguments: Annotated[
        list[str] | None,
        typer.Argument(
            help="[CONFIG.yaml] then key=value overrides (e.g. out_dir=runs/x sft.max_steps=100); "
            "without a config file, the embedded default (tiny model, generated tasks).",
            show_default=False,
        ),
    ] = None,
    print_config: PrintOption = False,
) -> None:
    """The whole pipeline as one resumable job, ending with an HTML report.

    Stages: tasks -> tiny model -> warm-up -> RL with memory (baseline and final evaluation) ->
    inference ablation -> report. Each is skipped once complete: after an interrupt, run the same
    command again to continue.
    """
    from codefalcon.pipeline import DEFAULT_CONFIG, RunConfig, run_pipeline

    items = list(arguments or [])
    path = Path(items.pop(0)) if items and "=" not in items[0] else DEFAULT_CONFIG
    config = run_recipe(RunConfig, lambda cfg: cfg, path, items, print_config)
    if config is None:
        return
    try:
        summary = run_pipeline(config, say=lambda text: err.print(text, highlight=False, markup=False))
    except (FileNotFoundError, ValueError) as e:
        raise fail(str(e)) from None
    err.print(f"[bold]report:[/] {summary['report']}")
    print(json.dumps(summary, default=str))
