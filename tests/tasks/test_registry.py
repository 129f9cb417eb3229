"""Benchmarks by name and loose task ids."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codefalcon.tasks import load_benchmark, normalize_task_id, save_tasks_jsonl


def test_humaneval_needs_no_path() -> None:
    tasks = load_benchmark("humaneval")
    assert len(tasks) == 164 and tasks[0].task_id == "HumanEval/0"
    with pytest.raises(ValueError, match="no humaneval tasks in split 'train'; this data has: test"):
        load_benchmark("humaneval", split="train")


def test_mbpp_original_or_sanitized_by_content(shared_data: Path, tmp_path: Path) -> None:
    assert len(load_benchmark("mbpp", shared_data / "mbpp.jsonl", split="test")) == 500
    assert len(load_benchmark("mbpp", shared_data / "sanitized-mbpp.json", split="all")) == 427
    renamed = tmp_path / "sanitized.data"  # the content decides, not the suffix
    renamed.write_bytes((shared_data / "sanitized-mbpp.json").read_bytes())
    assert len(load_benchmark("mbpp", renamed, split="test")) == 257


def test_path_is_required_with_a_hint() -> None:
    with pytest.raises(
        ValueError, match=r"benchmark 'mbpp' needs a data file: pass --data PATH to mbpp.jsonl"
    ):
        load_benchmark("mbpp")
    with pytest.raises(ValueError, match="unknown benchmark 'codecontests'"):
        load_benchmark("codecontests")


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="apps data not found"):
        load_benchmark("apps", tmp_path / "APPS")


def test_apps_and_jsonl(shared_data: Path, tmp_path: Path) -> None:
    apps = load_benchmark("apps", shared_data / "apps-samples")
    assert [task.task_id for task in apps][:2] == ["APPS/1", "APPS/111"]
    path = tmp_path / "tasks.jsonl"
    save_tasks_jsonl(apps, path)
    assert load_benchmark("jsonl", path) == apps
    assert load_benchmark("jsonl", path, split="test") == apps
    with pytest.raises(ValueError, match="no jsonl tasks in split 'train'"):
        load_benchmark("jsonl", path, split="train")


def test_evalplus_names(shared_data: Path) -> None:
    assert len(load_benchmark("mbpp_plus", shared_data / "MbppPlus-v0.2.0.jsonl.gz", split="test")) == 224


@pytest.mark.parametrize(
    ("benchmark", "raw", "task_id"),
    [
        ("mbpp", "Mbpp/11", "Mbpp/11"),
        ("mbpp", 11, "Mbpp/11"),
        ("mbpp", "11", "Mbpp/11"),
        ("mbpp", " mbpp/011 ", "Mbpp/11"),
        ("humaneval", "HumanEval/0", "HumanEval/0"),
        ("humaneval", 0, "HumanEval/0"),
        ("humaneval_plus", "0", "HumanEval/0"),
        ("apps", 1, "APPS/1"),
        ("apps", "0001", "APPS/1"),
        ("apps", "APPS/1", "APPS/1"),
        ("apps", "APPS/test/1", "APPS/1"),
        ("apps", "APPS/train/0001", "APPS/train/1"),
        ("jsonl", "my/task", "my/task"),
        ("jsonl", 7, "7"),
    ],
)
def test_normalize_task_id(benchmark: str, raw: str | int, task_id: str) -> None:
    assert normalize_task_id(benchmark, raw) == task_id


@pytest.mark.parametrize(
    ("benchmark", "raw"),
    [("mbpp", "HumanEval/1"), ("mbpp", "/1"), ("mbpp", "1.5"), ("mbpp", -1), ("mbpp", True), ("mbpp", "²"),
     ("apps", "train/1"), ("humaneval", "")],
)  # fmt: skip
def test_normalize_task_id_rejects(benchmark: str, raw: str | int) -> None:
    with pytest.raises(ValueError, match=f"not a {benchmark} task id"):
        normalize_task_id(benchmark, raw)


def test_normalize_task_id_unknown_benchmark() -> None:
    with pytest.raises(ValueError, match="unknown benchmark 'foo'"):
        normalize_task_id("foo", 1)


def test_ids_match_the_loaders(shared_data: Path) -> None:
    rows = [json.loads(line) for line in (shared_data / "mbpp.jsonl").read_text().splitlines()[:3]]
    loaded = load_benchmark("mbpp", shared_data / "mbpp.jsonl", split="prompt")[:3]
    assert [normalize_task_id("mbpp", row["task_id"]) for row in rows] == [t.task_id for t in loaded]
