"""Checks of command-line input made before any work, shared by every command that takes the option.

Each check raises `fail` (exit 2, one line on stderr naming the option) rather than letting a
bad value surface as a traceback, or after an hour of evaluation, or as a file overwritten.
Choices (--benchmark, --sandbox, --compare) are Enums in `codefalcon.cli.common`, so click
itself refuses an unknown value with exit 2 and lists the valid ones.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from codefalcon.cli.common import fail
from codefalcon.tasks.record import LANGUAGES

if TYPE_CHECKING:
    from pydantic import BaseModel

    from codefalcon.tasks.record import Task

ModelT = TypeVar("ModelT", bound="BaseModel")


def at_least(option: str, value: float | None, low: float) -> None:
    """Refuse ``value < low`` (None means "not given" and passes)."""
    if value is not None and value < low:
        raise fail(f"{option} must be at least {low:g}, got {value:g}")


def positive(option: str, value: float | None) -> None:
    """Refuse ``value <= 0`` (a timeout of zero would fail every test)."""
    if value is not None and not value > 0:
        raise fail(f"{option} must be greater than 0, got {value:g}")


def input_file(option: str, path: Path | None) -> None:
    """Refuse a path that is not an existing file."""
    if path is not None and not path.is_file():
        what = "a folder, not a file" if path.is_dir() else "no such file"
        raise fail(f"{option} {path}: {what}")


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file: relative paths, ``..`` and symlinks resolved."""
    if a.exists() and b.exists():
        return os.path.samefile(a, b)  # also catches hard links
    return a.resolve() == b.resolve()


def output_file(
    option: str, path: Path | None, inputs: Mapping[str, Path | None], *, creates_folder: bool = False
) -> None:
    """Refuse an output that would overwrite an input, is a folder, or cannot be written.

    ``inputs``: option name -> path of what the command reads. ``creates_folder``: the command
    makes a missing parent folder itself; otherwise a missing folder is refused here, before the
    work whose result could not be saved.
    """
    if path is None:
        return
    for name, source in inputs.items():
        if source is not None and same_file(path, source):
            raise fail(f"{option} {path} is the same file as {name}: it would be overwritten")
    if path.is_dir():
        raise fail(f"{option} {path}: is a folder, expected a file path")
    folder = path.parent
    if folder.exists() and not folder.is_dir():
        raise fail(f"{option} {path}: {folder} is not a folder")
    if not folder.exists() and not creates_folder:
        raise fail(f"{option} {path}: no such folder: {folder}")


def check_store_option(option: str, store: Path) -> None:
    """An existing store of ours, or exit 2 naming ``option``; reads only (never creates it)."""
    from codefalcon.memory.store import StoreError, check_store

    try:
        check_store(store)
    except FileNotFoundError:
        raise fail(f"{option} {store}: no such store (build one with codefalcon memory add)") from None
    except StoreError as e:
        raise fail(f"{option} {e}") from None


def load_tasks(
    benchmark: str,
    data: Path | None,
    split: str | None,
    language: Enum | None = None,
    source: Enum | None = None,
    target: Enum | None = None,
) -> list[Task]:
    """The benchmark's tasks, or an exit naming --data when the data is not that benchmark's.

    Catches what loaders raise on files that are not benchmark data at all (binary, a folder for
    a file) and refuses data with no task in it, which would otherwise run on nothing.
    ``language`` (humanevalx) and ``source``/``target`` (translate) are refused, naming the
    option, with any other benchmark.
    """
    from codefalcon.tasks.registry import load_benchmark

    check_language_options(benchmark, language, source, target)
    if benchmark == "apps" and data is not None and data.is_file():
        raise fail(f"--data {data}: is a file; apps data is a folder of problem folders")
    if benchmark == "translate" and data is not None and data.is_file():
        raise fail(f"--data {data}: is a file; translate data is the folder of humanevalx_*.jsonl.gz")
    languages = {"language": language, "source": source, "target": target}
    try:
        tasks = load_benchmark(
            benchmark, data, split, **{k: v.value for k, v in languages.items() if v is not None}
        )
    except UnicodeDecodeError:
        raise fail(f"--data {data}: not a text file, so not {benchmark} data") from None
    except IsADirectoryError:
        raise fail(f"--data {data}: is a folder; {benchmark} data is a file") from None
    except (OSError, ValueError) as e:  # TaskFormatError is a ValueError; it names file and line
        raise fail(f"--data: {e}") from None
    if not tasks:
        where = f" in split {split!r}" if split else ""
        raise fail(f"--data {data}: no {benchmark} tasks found{where}")
    return tasks


def check_language_options(
    benchmark: str, language: Enum | None, source: Enum | None, target: Enum | None
) -> None:
    """--language only with humanevalx; --source and --target both, and different, with translate."""
    if language is not None and benchmark != "humanevalx":
        raise fail(f"--language is for --benchmark humanevalx, not {benchmark}")
    for option, value in (("--source", source), ("--target", target)):
        if value is not None and benchmark != "translate":
            raise fail(f"{option} is for --benchmark translate, not {benchmark}")
        if value is None and benchmark == "translate":
            raise fail(f"--benchmark translate needs {option} (one of {', '.join(LANGUAGES)})")
    if benchmark == "translate" and source is not None and source == target:
        raise fail(f"--source and --target are both {source.value}: a translation needs two languages")


def options_model(model: type[ModelT], options: dict[str, Any]) -> ModelT:
    """Validate a command's options into its config model; errors name the option (--max-new-tokens)."""
    from pydantic import ValidationError

    try:
        return model.model_validate(options)
    except ValidationError as e:
        problems = []
        for item in e.errors():
            message = item["msg"].removeprefix("Value error, ")
            if item["loc"]:
                option = "--" + str(item["loc"][0]).replace("_", "-")
                message = f"{option}: {message} (got {item.get('input')!r})"
            problems.append(message)
        raise fail("; ".join(problems)) from None
