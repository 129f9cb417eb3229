"""The `codefalcon` command.

Every subcommand is a thin shell over library functions: parse options, call, print. Heavy
imports (torch, transformers) happen inside the commands that need them, so `--help` is instant.
One module per group of commands; this module only assembles them.
"""

from __future__ import annotations

import logging

import typer

from codefalcon.cli import critic, evaluate, memory, models, serve, training
from codefalcon.cli import tasks as tasks_cli

app = typer.Typer(
    name="codefalcon",
    help="Make code-generating language models better with execution feedback.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command()(evaluate.evaluate)
app.command()(models.generate)
app.command()(models.solve)
app.command()(serve.serve)
app.command()(training.sft)
app.command()(training.train)
app.command()(training.run)
app.command()(evaluate.report)
app.add_typer(tasks_cli.app, name="tasks")
app.add_typer(models.app, name="model")
app.add_typer(critic.app, name="critic")
app.add_typer(memory.app, name="memory")


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # our own few INFO lines say what a run decided (tasks kept by train_filter, engine syncs,
    # cluster nodes); the libraries' stay at WARNING
    logging.getLogger("codefalcon").setLevel(logging.INFO)
    app()


__all__ = ["app", "main"]
