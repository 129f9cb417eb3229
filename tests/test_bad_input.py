"""Bad command-line input (issue 11): exit 2, a short message naming the option or file, no
traceback, nothing written or lost. None of these runs an evaluation or loads a model: each is
refused before the work starts."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from codefalcon.cli import app
from codefalcon.memory import Attempt

runner = CliRunner()
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))


def refused(args: list[str], *named: str) -> str:
    """Run the CLI, check it was refused the agreed way, and return its stderr."""
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # not a traceback
    assert "Traceback" not in result.output and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) <= 6, result.stderr
    for name in named:
        assert str(name) in result.stderr, (name, result.stderr)
    return result.stderr


@pytest.fixture
def mbpp(shared_data: Path) -> list[str]:
    return ["evaluate", "--benchmark", "mbpp", "--data", str(shared_data / "mbpp.jsonl"), "--k", "1"]


@pytest.fixture
def samples(tmp_path: Path) -> Path:
    path = tmp_path / "s.jsonl"
    path.write_text('{"task_id": 11, "solution": "def remove_Occ(s, ch):\\n    return s\\n"}\n')
    return path


# ---- evaluate ------------------------------------------------------------------------------


def test_out_that_is_the_samples_file_is_refused(mbpp, samples, tmp_path, monkeypatch) -> None:
    before = samples.read_bytes()
    (tmp_path / "link.jsonl").symlink_to(samples)
    monkeypatch.chdir(tmp_path)
    for out in (samples, "s.jsonl", f"../{tmp_path.name}/s.jsonl", "link.jsonl"):
        refused([*mbpp, "--samples", samples, "--out", out], "--out", "--samples")
    refused([*mbpp, "--samples", samples, "--report", "link.jsonl"], "--report", "--samples")
    assert samples.read_bytes() == before


def test_out_in_a_missing_folder_is_refused_before_any_work(mbpp, samples, tmp_path) -> None:
    out = tmp_path / "no" / "such" / "r.jsonl"
    refused([*mbpp, "--samples", samples, "--out", out], "--out", str(out.parent))
    assert not (tmp_path / "no").exists()
    refused([*mbpp, "--samples", samples, "--out", tmp_path], "--out", "folder")


def _unrelated_data(tmp_path: Path) -> dict[str, Path]:
    empty = tmp_path / "empty"
    empty.mkdir()
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "readme.txt").write_text("not an APPS problem\n")
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"name": "ann", "age": 3}\n')
    binary = tmp_path / "blob.bin"
    binary.write_bytes(PNG)
    return {"empty": empty, "notes": notes, "rows": rows, "binary": binary}


@pytest.mark.parametrize(
    ("benchmark", "kind"),
    [
        ("apps", "empty"),
        ("apps", "notes"),
        ("apps", "binary"),
        ("jsonl", "rows"),
        ("jsonl", "binary"),
        ("jsonl", "empty"),
        ("mbpp", "rows"),
        ("mbpp", "binary"),
        ("mbpp", "notes"),
    ],
)
def test_data_that_is_not_the_benchmark_is_refused(tmp_path, benchmark, kind) -> None:
    data = _unrelated_data(tmp_path)[kind]
    args = ["evaluate", "--benchmark", benchmark, "--data", data, "--samples", "canonical"]
    refused(args, "--data")


@pytest.mark.parametrize(
    ("option", "value", "valid"),
    [("--compare", "fuzzy", ("exact", "tokens", "apps")), ("--sandbox", "docker", ("auto", "bwrap", "none"))],
)
def test_unknown_choice_lists_the_valid_ones(mbpp, samples, option, value, valid) -> None:
    # click refuses it (as it does an unknown --benchmark), in a box that may wrap the list.
    refused([*mbpp, "--samples", samples, option, value], option, value, *(f"'{v}'" for v in valid))


@pytest.mark.parametrize(("option", "value"), [("--timeout", "0"), ("--timeout", "-1.5"), ("--workers", "0")])
def test_timeout_and_workers_must_be_positive(mbpp, samples, option, value) -> None:
    refused([*mbpp, "--samples", samples, option, value], option, value)


def test_binary_samples_file_is_named(mbpp, tmp_path) -> None:
    blob = tmp_path / "s.jsonl"
    blob.write_bytes(PNG)
    refused([*mbpp, "--samples", blob], "--samples", "s.jsonl")


# ---- the same options in the other commands ---------------------------------------------------


def test_generate_checks_data_and_out_before_loading_the_model(tmp_path) -> None:
    data = _unrelated_data(tmp_path)
    generate = ["generate", "--model", tmp_path / "no-model", "--benchmark", "jsonl"]
    refused([*generate, "--data", data["binary"], "--out", tmp_path / "s.jsonl"], "--data")
    before = data["rows"].read_bytes()
    refused([*generate, "--data", data["rows"], "--out", data["rows"]], "--out", "--data")
    assert data["rows"].read_bytes() == before  # generate appends to --out: never to the data
    refused(
        [*generate, "--data", data["rows"], "--out", tmp_path / "x.jsonl", "--batch-size", "0"],
        "--batch-size",
    )


def test_solve_names_its_options(tmp_path, shared_data) -> None:
    solve = ["solve", "--model", tmp_path / "no-model", "--benchmark", "mbpp", "--out", tmp_path / "o.jsonl"]
    data = ["--data", shared_data / "mbpp.jsonl"]
    refused([*solve, *data, "--budget", "0"], "--budget")
    refused([*solve, "--data", _unrelated_data(tmp_path)["binary"]], "--data")
    foreign = _foreign_db(tmp_path / "theirs.db")
    refused([*solve, *data, "--strategy", "falcon", "--memory", foreign], "--memory", "theirs.db")
    refused([*solve, *data, "--strategy", "falcon", "--memory", tmp_path / "none.db"], "--memory", "none.db")
    assert not (tmp_path / "none.db").exists()


def test_critic_score_never_overwrites_its_inputs(tmp_path, samples, shared_data) -> None:
    before = samples.read_bytes()
    score = ["critic", "score", "--critic", tmp_path / "c", "--benchmark", "mbpp", "--samples", samples]
    refused([*score, "--data", shared_data / "mbpp.jsonl", "--out", samples], "--out", "--samples")
    refused([*score, "--data", _unrelated_data(tmp_path)["rows"]], "--data")
    assert samples.read_bytes() == before


def test_recipe_execution_options_are_checked_too() -> None:
    # sft and train take the executor's options as config keys; their models check them.
    refused(["sft", "model=m", "train=[]", "exec_workers=0", "--print-config"], "exec_workers=0")
    refused(["sft", "model=m", "train=[]", "exec_timeout=0", "--print-config"], "exec_timeout=0")


# ---- memory stores -----------------------------------------------------------------------------


def _foreign_db(path: Path) -> Path:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        db.execute("INSERT INTO users (name) VALUES ('ann')")
    db.close()
    return path


def _not_stores(tmp_path: Path) -> dict[str, Path]:
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 20)
    other_app = tmp_path / "app.db"
    with sqlite3.connect(other_app) as db:
        db.execute("PRAGMA application_id = 1234")
        db.execute("CREATE TABLE tasks (x)")  # one of our table names, but not our file
    db.close()
    return {"foreign": _foreign_db(tmp_path / "theirs.db"), "corrupt": corrupt, "other_app": other_app}


@pytest.mark.parametrize("kind", ["foreign", "corrupt", "other_app"])
@pytest.mark.parametrize("command", ["add", "search", "stats", "export"])
def test_memory_refuses_a_file_that_is_not_our_store(tmp_path, kind, command) -> None:
    store = _not_stores(tmp_path)[kind]
    attempts = tmp_path / "attempts.jsonl"
    attempts.write_text(
        json.dumps(Attempt("t/1", "Add.", "train", "", "x = 1\n", "passed", []).to_dict()) + "\n"
    )
    before = store.read_bytes()
    files = sorted(tmp_path.iterdir())
    extra = {
        "add": ["--attempts", attempts],
        "search": ["query"],
        "stats": [],
        "export": ["--out", tmp_path / "e.jsonl"],
    }[command]
    refused(
        ["memory", command, "--store", store, *extra], "--store", store.name, "not a codefalcon memory store"
    )
    assert store.read_bytes() == before  # no tables added, not switched to WAL
    assert sorted(tmp_path.iterdir()) == files  # no index, no export, no -wal beside it


@pytest.mark.parametrize("command", ["search", "stats", "export"])
def test_memory_reads_never_create_a_missing_store(tmp_path, command) -> None:
    store = tmp_path / "sub" / "memory.db"
    extra = {"search": ["query"], "stats": [], "export": ["--out", tmp_path / "e.jsonl"]}[command]
    refused(["memory", command, "--store", store, *extra], "--store", "memory.db", "no such store")
    assert list(tmp_path.iterdir()) == []


def test_memory_add_accepts_a_new_path_or_an_empty_file(tmp_path) -> None:
    attempts = tmp_path / "attempts.jsonl"
    attempts.write_text(
        json.dumps(Attempt("t/1", "Add.", "train", "", "x = 1\n", "passed", []).to_dict()) + "\n"
    )
    empty = tmp_path / "empty.db"
    empty.touch()
    for store in (tmp_path / "new" / "memory.db", empty):
        result = runner.invoke(app, ["memory", "add", "--store", str(store), "--attempts", str(attempts)])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout.splitlines()[-1])["n_attempts"] == 1
    refused(["memory", "add", "--store", attempts, "--attempts", attempts], "--store", "--attempts")


# ---- report ------------------------------------------------------------------------------------


def test_report_on_a_folder_without_a_run(tmp_path) -> None:
    refused(["report", tmp_path], "RUN_DIR", str(tmp_path), "no run")
    assert list(tmp_path.iterdir()) == []  # no report.html of nothing


# ---- config files and overrides ------------------------------------------------------------------


@pytest.mark.parametrize("content", [PNG, bytes(range(256)) * 4, b"model: m\x00\n"])
def test_binary_config_file_is_named(tmp_path, content) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_bytes(content)
    refused(["sft", "-c", path, "--print-config"], "cfg.yaml", "not a text file")


def test_alias_bomb_is_refused_in_seconds(tmp_path) -> None:
    # "Billion laughs": nine levels of nine aliases stand for 9**9 = 387 M strings.
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)]
    path = tmp_path / "bomb.yaml"
    path.write_text("model: m\ntrain: []\n" + "\n".join(lines) + "\n")
    start = time.monotonic()
    refused(["sft", "-c", path, "--print-config"], "bomb.yaml", "alias")
    assert time.monotonic() - start < 3.0
    path.write_text("model: m\ntrain: &a [*a]\n")  # an anchor inside itself: infinitely deep
    refused(["sft", "-c", path, "--print-config"], "bomb.yaml", "recursive alias")


@pytest.mark.parametrize(
    ("override", "shown"),
    [
        ("max_steps=abc", "override 'max_steps=abc'"),  # bad value type
        ("stepz=3", "override 'stepz=3': unknown key 'stepz'"),  # unknown field
        ("=3", "override '=3'"),  # bad key
        ("max_steps.x=1", "override 'max_steps.x=1'"),  # a value used as a section
        ("lora.rank=8", "override 'lora.rank=8'"),  # unknown key in a section
    ],
)
def test_override_errors_name_the_override_not_the_file(tmp_path, override, shown) -> None:
    path = tmp_path / "good.yaml"
    path.write_text("model: m\ntrain: []\nlora: {r: 4}\n")
    stderr = refused(["sft", "-c", path, override, "--print-config"], shown)
    assert "good.yaml" not in stderr


def test_file_errors_still_name_the_file(tmp_path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("model: m\ntrain: []\nstepz: 3\n")
    refused(["sft", "-c", path, "max_steps=5", "--print-config"], "bad.yaml", "stepz")
    assert "max_steps=5" not in refused(["sft", "-c", path, "max_steps=5", "--print-config"])


def test_override_of_a_pipeline_section_is_named() -> None:
    refused(["run", "sft.max_steps=abc", "--print-config"], "override 'sft.max_steps=abc'")
