"""The error type and the shared file readers every loader reports through."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import pytest

from codefalcon.tasks import TaskFormatError
from codefalcon.tasks.reading import Where, get, iter_jsonl, read_json


def test_message_names_file_line_and_field() -> None:
    error = TaskFormatError("data/t.jsonl", "tests.cases[2].input", "expected a string", line=7)
    assert str(error) == "data/t.jsonl:7: field 'tests.cases[2].input': expected a string"
    assert isinstance(error, ValueError)
    assert (
        str(TaskFormatError("a/0001/metadata.json", None, "invalid JSON"))
        == "a/0001/metadata.json: invalid JSON"
    )


def test_error_survives_pickling() -> None:
    # Loaders may run in worker processes; the error must come back whole.
    error = pickle.loads(pickle.dumps(TaskFormatError("t.jsonl", "prompt", "missing", line=3)))
    assert (error.path, error.field, error.problem, error.line) == (Path("t.jsonl"), "prompt", "missing", 3)
    assert str(error) == "t.jsonl:3: field 'prompt': missing"


def test_iter_jsonl_reads_gzip_skips_blank_lines_and_counts_them(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl.gz"
    with gzip.open(path, "wt") as handle:
        handle.write('{"a": 1}\n   \n{"a": 2}\n')
    assert [(row, where.line) for row, where in iter_jsonl(path)] == [({"a": 1}, 1), ({"a": 2}, 3)]


def test_bad_json_line(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n{"a": \n')
    with pytest.raises(TaskFormatError, match=r"rows.jsonl:2: invalid JSON \(Expecting value, column 6\)"):
        list(iter_jsonl(path))


def test_read_json_reports_the_line(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{\n  "a": 1,\n  "b": \n}')
    with pytest.raises(TaskFormatError, match=r"x.json:4: invalid JSON"):
        read_json(path)


def test_get_checks_presence_and_type() -> None:
    where = Where(Path("f.jsonl"), 2)
    assert get({"a": "x"}, "a", str, where) == "x"
    assert get({}, "a", str, where, default="d") == "d"
    assert get({"a": None}, "a", (str, type(None)), where) is None
    with pytest.raises(TaskFormatError, match=r"f.jsonl:2: field 'p.a': missing"):
        get({}, "a", str, where, prefix="p.")
    with pytest.raises(TaskFormatError, match="expected an integer, got boolean"):
        get({"a": True}, "a", int, where)
    with pytest.raises(TaskFormatError, match="expected a string, got null"):
        get({"a": None}, "a", str, where)
