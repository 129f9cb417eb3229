"""The `codefalcon evaluate` command end to end, on small inputs."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from codefalcon.cli import app

runner = CliRunner()


def _evaluate(*args: str):
    return runner.invoke(app, ["evaluate", *args])


def test_evaluate_apps_canonical_json_summary(shared_data, tmp_path):
    out = tmp_path / "res.jsonl"
    result = _evaluate(
        "--benchmark",
        "apps",
        "--data",
        str(shared_data / "apps-samples"),
        "--samples",
        "canonical",
        "--k",
        "1,10",
        "--out",
        str(out),
        "--json",
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["n_tasks"] == 5 and summary["n_samples"] == 5
    assert summary["pass@1"] == 1.0
    assert summary["pass@10"] is None  # k > n is not defined, never estimated on a subset
    assert summary["verdicts"]["passed"] == 5
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 5 and all(x["passed"] for x in lines)


def test_evaluate_mbpp_samples_in_file_order(shared_data, tmp_path):
    samples = tmp_path / "s.jsonl"
    rows = [
        {"task_id": 11, "solution": "def remove_Occ(s, ch):\n    return s\n"},
        {"task_id": "Mbpp/12", "solution": "def sort_matrix(m):\n    return m\n"},
        {"task_id": "Mbpp/11", "solution": "def remove_Occ(s, ch)\n"},
    ]
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = _evaluate(
        "--benchmark",
        "mbpp",
        "--data",
        str(shared_data / "mbpp.jsonl"),
        "--samples",
        str(samples),
        "--k",
        "1",
        "--json",
    )
    assert result.exit_code == 0, result.output
    out = [json.loads(x) for x in (tmp_path / "s_results.jsonl").read_text().splitlines()]
    assert [x["task_id"] for x in out] == ["Mbpp/11", "Mbpp/12", "Mbpp/11"]
    assert [x["verdict"] for x in out] == ["wrong_answer", "wrong_answer", "compile_error"]
    assert all(len(x["tests"]) == 3 for x in out)


def test_evaluate_errors_name_file_line_and_field(shared_data, tmp_path):
    data = ["--benchmark", "mbpp", "--data", str(shared_data / "mbpp.jsonl")]
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    result = _evaluate(*data, "--samples", str(empty))
    assert result.exit_code == 2 and "empty.jsonl" in result.output
    unknown = tmp_path / "unknown.jsonl"
    unknown.write_text('{"task_id": "Mbpp/11", "solution": "x"}\n{"task_id": 99999, "solution": "x"}\n')
    result = _evaluate(*data, "--samples", str(unknown))
    assert result.exit_code == 2
    assert "unknown.jsonl:2" in result.output and "task_id" in result.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"task_id": "Mbpp/11", "solution": "x"\n')
    result = _evaluate(*data, "--samples", str(bad))
    assert result.exit_code == 2 and "bad.jsonl:1" in result.output
    result = _evaluate(*data, "--samples", str(bad), "--k", "one")
    assert result.exit_code == 2 and "--k" in result.output
    result = _evaluate("--benchmark", "mbpp", "--samples", str(bad))
    assert result.exit_code == 2 and "--data" in result.output


def test_help_lists_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "evaluate" in result.output and "tasks" in result.output


def test_every_command_and_option_explains_itself():
    import click
    import typer.main

    def leaves(command: click.Command, ctx: click.Context):
        if hasattr(command, "list_commands"):  # typer groups are not always click.Group instances
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                yield from leaves(sub, click.Context(sub, info_name=name, parent=ctx))
        else:
            yield ctx.command_path, command

    root = typer.main.get_command(app)
    found = list(leaves(root, click.Context(root, info_name="codefalcon")))
    assert len(found) >= 15
    for path, command in found:
        assert command.help, f"{path} has no description"
        bare = [
            p.name
            for p in command.params
            if hasattr(p, "help") and p.param_type_name == "option" and not p.help
        ]
        assert not bare, f"{path}: options without help: {bare}"
