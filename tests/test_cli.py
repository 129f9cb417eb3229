"""The `codefalcon evaluate` command end to end, on small inputs."""

from __future__ import annotations

import json
import logging
import sys

import pytest
from typer.testing import CliRunner

from codefalcon.cli import app, main

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


def test_evaluate_against_a_baseline_prints_the_paired_gain(shared_data, tmp_path):
    mbpp = shared_data / "mbpp.jsonl"
    code = {
        r["task_id"]: r["code"]
        for r in map(json.loads, mbpp.read_text().splitlines())
        if r["task_id"] in (11, 12, 13)
    }
    data = ["--benchmark", "mbpp", "--data", str(mbpp), "--k", "1"]

    def evaluated(name: str, solved: set[int], *extra: str):
        samples = tmp_path / f"{name}.jsonl"
        rows = [{"task_id": t, "solution": code[t] if t in solved else "def f():\n    pass\n"} for t in code]
        samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return _evaluate(*data, "--samples", str(samples), "--json", *extra)

    assert evaluated("before", {13}).exit_code == 0
    before = tmp_path / "before_results.jsonl"
    result = evaluated("after", {11, 12, 13}, "--baseline", str(before))
    assert result.exit_code == 0, result.output
    paired = json.loads(result.stdout.strip().splitlines()[-1])["paired"]
    # 2 of 3 tasks flip to solved, none the other way: exact McNemar p = 2 x 0.5^2 = 0.5.
    assert (paired["only_after"], paired["only_before"], paired["n_tasks"]) == (2, 0, 3)
    assert abs(paired["gain"] - 2 / 3) < 1e-12 and paired["p_value"] == 0.5
    assert "McNemar p = 0.5" in result.output

    after = tmp_path / "after_results.jsonl"
    kept = after.read_bytes()
    result = evaluated("after", {11}, "--baseline", str(after))  # the file it would overwrite
    assert result.exit_code == 2 and "--baseline" in result.output and after.read_bytes() == kept
    result = evaluated("again", {11}, "--baseline", str(tmp_path / "before.jsonl"))  # samples, not results
    assert result.exit_code == 2 and "before.jsonl:1" in result.output and "completion_id" in result.output
    assert not (tmp_path / "again_results.jsonl").exists()


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


def test_main_shows_our_info_lines_and_keeps_libraries_at_warning(monkeypatch, capsys):
    ours = logging.getLogger("codefalcon")
    monkeypatch.setattr(ours, "level", ours.level)  # restored after the test
    monkeypatch.setattr(sys, "argv", ["codefalcon", "--help"])
    with pytest.raises(SystemExit):
        main()
    assert "Usage" in capsys.readouterr().out
    assert logging.getLogger("codefalcon.rl.session").getEffectiveLevel() == logging.INFO
    assert logging.getLogger("transformers").getEffectiveLevel() >= logging.WARNING


def test_bracketed_help_text_survives_rich_markup():
    """Rich reads "[default: x]" as a style tag and drops it unless escaped as "\\[default: x]"."""
    import re

    import click
    import typer.main

    root = typer.main.get_command(app)
    ctx = click.Context(root, info_name="codefalcon")
    checked = 0
    for group_name in root.list_commands(ctx):
        group = root.get_command(ctx, group_name)
        names = group.list_commands(ctx) if hasattr(group, "list_commands") else [None]
        for name in names:
            command = group.get_command(ctx, name) if name else group
            path = [group_name, name] if name else [group_name]
            texts = [p.help for p in command.params if getattr(p, "help", None)]
            wanted = [m.group(1) for text in texts for m in re.finditer(r"\\?\[([^\]]+)\]", text)]
            if not wanted:
                continue
            shown = " ".join(runner.invoke(app, [*path, "--help"], env={"COLUMNS": "400"}).output.split())
            for inner in wanted:
                assert f"[{inner}]" in shown, f"codefalcon {' '.join(path)} --help lost [{inner}]"
                checked += 1
    assert checked >= 7
