"""`codefalcon sft` (and later `train`): recipes driven by a YAML config plus key=value overrides."""

from __future__ import annotations

import functools
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
AllowChangeOption = Annotated[
    bool,
    typer.Option(
        "--allow-config-change",
        help="Resume a run even if its checkpoint was trained with a different config (the "
        "differing keys are logged). Without it such a resume is refused, naming the keys; run "
        "length, save/eval cadence, device and workers may always change.",
    ),
]


def sft(
    config: ConfigOption = None,
    overrides: OverridesArgument = None,
    print_config: PrintOption = False,
    allow_config_change: AllowChangeOption = False,
) -> None:
    """Supervised warm-up: fine-tune a policy on reference solutions (CodeRL's first stage).

    Loss on answer tokens only, gradient accumulation, warm-up + cosine LR, held-out loss,
    checkpoints that resume exactly (run it again with the same out_dir after an interrupt),
    and a final greedy pass@1 on the eval tasks with a per-difficulty table.
    """
    from codefalcon.rl.sft import SFTConfig, train_sft

    if _launched_rank() is not None:
        raise fail("codefalcon sft runs as one process: start it without torchrun / accelerate launch")
    recipe = functools.partial(train_sft, allow_config_change=allow_config_change)
    summary = run_recipe(SFTConfig, recipe, config, overrides or [], print_config)
    if summary is not None:
        _print_run_summary(summary)


def _print_run_summary(summary: dict) -> None:
    from codefalcon.cli.evaluate import print_summary
    from codefalcon.evaluation.summary import EvalSummary

    evaluation = summary.pop("eval", None)
    err.print(summary)
    if evaluation is not None:
        typed = EvalSummary.from_dict(evaluation, "sft: eval")
        print_summary(typed, Path(summary["final_model"]).parent / "eval" / "results.jsonl")
        summary["eval"] = typed.pass_at_k_values()
    print(json.dumps(summary))


def train(
    config: ConfigOption = None,
    overrides: OverridesArgument = None,
    algo: Annotated[
        str | None, typer.Option(help="coderl, ppo, grpo, rloo, falcon or rft (overrides the config's algo).")
    ] = None,
    print_config: PrintOption = False,
    allow_config_change: AllowChangeOption = False,
) -> None:
    """RL fine-tuning from execution feedback: sample -> execute -> reward -> update.

    One recipe per algorithm (src/codefalcon/rl/recipes/): CodeRL (critic-weighted policy
    gradient vs a greedy baseline, alternating with CE), PPO (value head, GAE, clipped losses,
    adaptive KL), GRPO / RLOO (group-relative advantages, clip-higher, token-level loss), FALCON
    (memory in the prompts, per-task adaptation, Reptile outer step) and RFT (fine-tuning on the
    samples that passed, the expert-iteration baseline). Greedy held-out pass@1 before and after;
    metrics in metrics.jsonl and TensorBoard; checkpoints resume exactly after a kill. Under
    torchrun or accelerate launch, GRPO, RLOO, PPO and CodeRL train data-parallel (docs/scaling.md).
    """
    from codefalcon.rl.train import train_rl
    from codefalcon.rl.train_config import TrainConfig

    extra = [f"algo={algo}"] if algo else []
    recipe = functools.partial(train_rl, allow_config_change=allow_config_change)
    local_rank = _launched_rank()
    if local_rank is None:
        summary = run_recipe(TrainConfig, recipe, config, [*(overrides or []), *extra], print_config)
    else:  # one of several processes started by torchrun / accelerate launch (docs/scaling.md)
        from codefalcon.rl.distributed import current_world, join_process_group, leave_process_group

        join_process_group(local_rank)
        writer = current_world().is_writer
        try:
            summary = run_recipe(TrainConfig, recipe, config, [*(overrides or []), *extra], print_config)
        finally:
            leave_process_group()
        if not writer:  # rank 0 prints the summary
            return
    if summary is not None:
        print_result(summary)


def _launched_rank() -> int | None:
    """This process's LOCAL_RANK when a launcher started several (WORLD_SIZE > 1), else None."""
    import os

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    return int(os.environ.get("LOCAL_RANK", "0"))


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
    allow_config_change: AllowChangeOption = False,
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
        summary = run_pipeline(
            config,
            say=lambda text: err.print(text, highlight=False, markup=False),
            allow_config_change=allow_config_change,
        )
    except (FileNotFoundError, ValueError) as e:
        raise fail(str(e)) from None
    err.print(f"[bold]report:[/] {summary['report']}")
    print(json.dumps(summary, default=str))
