"""What every command shares: the error exit, option parsers, progress bars, number formats."""

from __future__ import annotations

import json
import sys
from enum import Enum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from codefalcon.execution.compare import STDOUT_COMPARATORS
from codefalcon.execution.sandbox import SANDBOXES
from codefalcon.tasks.record import LANGUAGES

err = Console(stderr=True)


MaxSimilarityOption = Annotated[
    float | None,
    typer.Option(help="Skip similar tasks whose cosine to the query is above this (near-copies)."),
]
MaxExampleSimilarityOption = Annotated[
    float | None,
    typer.Option(help="Skip a similar task whose cosine to an example already chosen is above this."),
]


class Benchmark(str, Enum):
    humaneval = "humaneval"
    mbpp = "mbpp"
    apps = "apps"
    jsonl = "jsonl"
    humanevalx = "humanevalx"
    translate = "translate"


# The languages the tasks (and so the executor) know, so a new one appears here by itself.
Language = Enum("Language", {name: name for name in LANGUAGES}, type=str)

LanguageOption = Annotated[
    Language | None,
    typer.Option(help="humanevalx: the file's language \\[default: read from its task ids]."),
]
SourceOption = Annotated[
    Language | None, typer.Option("--source", help="translate: the language of the programs shown.")
]
TargetOption = Annotated[
    Language | None, typer.Option("--target", help="translate: the language to write (and test) in.")
]


# The executor's own choices, so a new sandbox or comparison appears here by itself.
Sandbox = Enum("Sandbox", {name: name for name in SANDBOXES}, type=str)
Compare = Enum("Compare", {name: name for name in STDOUT_COMPARATORS}, type=str)


def fail(message: str) -> typer.Exit:
    """Print ``message`` as an error and return the exit (code 2) for the caller to raise.

    One line however long (paths are not folded), and brackets in it are text, not markup.
    """
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def parse_ks(text: str) -> list[int]:
    """``"1,10,100"`` -> ``[1, 10, 100]`` (sorted, unique, positive)."""
    try:
        ks = sorted({int(k) for k in text.split(",") if k.strip()})
    except ValueError:
        raise fail(f"--k must be a comma-separated list of integers, got {text!r}") from None
    if not ks or ks[0] < 1:
        raise fail(f"--k values must be positive integers, got {text!r}")
    return ks


def progress(total: int, description: str, unit: str = "prog") -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit=unit, file=sys.stderr, dynamic_ncols=True)


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}%"


def print_result(summary: dict[str, Any], shown: dict[str, Any] | None = None) -> None:
    """The convention of every command: readable output on stderr, one JSON object as the last
    line of stdout (``shown``: a shorter view for people, when the JSON is large)."""
    err.print(summary if shown is None else shown)
    print(json.dumps(summary, default=str))
