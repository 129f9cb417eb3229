"""`codefalcon sft` (and later `train`): recipes driven by a YAML config plus key=value overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from codefalcon.cli.common import err, fail

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
    from codefalcon.configs import ConfigError, dump_config, load_config
    from codefalcon.rl.sft import SFTConfig, train_sft

    try:
        cfg = load_config(SFTConfig, config, overrides or [])
    except ConfigError as e:
        raise fail(str(e)) from None
    err.print(dump_config(cfg), highlight=False)
    if print_config:
        return
    try:
        summary = train_sft(cfg)
    except (FileNotFoundError, ValueError) as e:
        raise fail(str(e)) from None
    _print_run_summary(summary)


def _print_run_summary(summary: dict) -> None:
    import json

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
    from codefalcon.configs import ConfigError, dump_config, load_config
    from codefalcon.rl.train import train_rl
    from codefalcon.rl.train_config import TrainConfig

    extra = [f"algo={algo}"] if algo else []
    try:
        cfg = load_config(TrainConfig, config, [*(overrides or []), *extra])
    except ConfigError as e:
        raise fail(str(e)) from None
    err.print(dump_config(cfg), highlight=False)
    if print_config:
        return
    try:
        summary = train_rl(cfg)
    except (FileNotFoundError, ValueError) as e:
        raise fail(str(e)) from None
    import json

    err.print(summary)
    print(json.dumps(summary))
