"""`--benchmark humanevalx` and `--benchmark translate` on the command line: option errors, export,
and (through the sandboxed executor) canonical programs of every language passing their tests."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from codefalcon.cli import app
from codefalcon.tasks import load_benchmark, load_tasks_jsonl, save_tasks_jsonl

runner = CliRunner()


def _evaluate(*args: str):
    return runner.invoke(app, ["evaluate", "--samples", "canonical", "--k", "1", *args])


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--benchmark", "humanevalx", "--language", "go"], "--language"),
        (["--benchmark", "translate", "--source", "rust", "--target", "cpp"], "--source"),
        (["--benchmark", "translate", "--source", "cpp", "--target", "c#"], "--target"),
        (["--benchmark", "mbpp", "--language", "cpp"], "--language is for --benchmark humanevalx"),
        (["--benchmark", "humanevalx", "--source", "cpp"], "--source is for --benchmark translate"),
        (["--benchmark", "translate", "--source", "cpp"], "needs --target"),
        (
            ["--benchmark", "translate", "--source", "js", "--target", "js"],
            "--source and --target are both js",
        ),
    ],
)
def test_bad_language_options_exit_2_naming_the_option(shared_data, args, option) -> None:
    result = _evaluate(*args, "--data", str(shared_data))
    assert result.exit_code == 2, result.output
    assert option in result.output


def test_data_errors_name_the_file(shared_data, tmp_path) -> None:
    result = _evaluate("--benchmark", "humanevalx", "--data", str(shared_data))
    assert result.exit_code == 2 and "name the language" in result.output
    result = _evaluate("--benchmark", "humanevalx", "--language", "java", "--data", str(tmp_path))
    assert result.exit_code == 2 and "no humanevalx_java.jsonl.gz" in result.output
    cpp_file = shared_data / "humanevalx_cpp.jsonl.gz"
    result = _evaluate("--benchmark", "humanevalx", "--language", "js", "--data", str(cpp_file))
    assert result.exit_code == 2 and "humanevalx_cpp.jsonl.gz:1" in result.output
    result = _evaluate(
        "--benchmark", "translate", "--source", "cpp", "--target", "js", "--data", str(cpp_file)
    )
    assert result.exit_code == 2 and "is a file" in result.output


def test_export_writes_tasks_a_config_can_name(shared_data, tmp_path) -> None:
    out = tmp_path / "tr.jsonl"
    args = ["--benchmark", "translate", "--source", "python", "--target", "java", "--data", str(shared_data)]
    result = runner.invoke(app, ["tasks", "export", *args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    tasks = load_tasks_jsonl(out)
    assert tasks == load_benchmark("translate", shared_data, source="python", target="java")
    assert tasks[3].metadata["source_program"].startswith("from typing import List")
    assert {t.tests.language for t in tasks} == {"java"}


def _few_canonical(shared_data, tmp_path, benchmark_args: list[str], numbers: tuple[int, ...]):
    """A tasks jsonl of a few problems, so the canonical run stays short."""
    name, *rest = benchmark_args
    options = dict(zip(rest[::2], rest[1::2], strict=True))
    kwargs = {key.removeprefix("--"): value for key, value in options.items()}
    tasks = load_benchmark(name, shared_data, **kwargs)
    path = tmp_path / "few.jsonl"
    save_tasks_jsonl([tasks[n] for n in numbers], path)
    return path


@pytest.mark.slow
@pytest.mark.skipif(
    not all(shutil.which(t) for t in ("g++", "javac", "node")), reason="needs g++, javac, node"
)
@pytest.mark.parametrize(
    "benchmark_args",
    [
        ["humanevalx", "--language", "cpp"],
        ["humanevalx", "--language", "java"],
        ["humanevalx", "--language", "js"],
        ["humanevalx", "--language", "python"],
        ["translate", "--source", "python", "--target", "cpp"],
        ["translate", "--source", "cpp", "--target", "java"],
        ["translate", "--source", "java", "--target", "js"],
    ],
)
def test_canonical_programs_pass_in_the_sandbox(shared_data, tmp_path, benchmark_args) -> None:
    # Problem 0 has a C++ header from the prelude; 10 and 38 have helper functions before the
    # entry point (and 38's C++ declaration is not a plain signature).
    few = _few_canonical(shared_data, tmp_path, benchmark_args, (0, 10, 38))
    out = tmp_path / "res.jsonl"
    result = _evaluate("--benchmark", "jsonl", "--data", str(few), "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert summary["pass@1"] == 1.0, [(r["task_id"], r["verdict"]) for r in rows]
