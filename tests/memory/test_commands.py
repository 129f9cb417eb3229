"""The functions behind ``codefalcon memory {add,search,stats,export}``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codefalcon.memory import add_main, export_main, read_attempts, search_main, stats_main
from codefalcon.tasks.synth import generate_tasks


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def evaluated(tmp_path: Path):
    tasks = generate_tasks(4, seed=0, difficulty="easy")
    body = tasks[0].solutions[0][len(tasks[0].prompt) :]
    samples = [
        {"task_id": tasks[0].task_id, "completion": body, "rewards": {"unit": 1.0}},
        {"task_id": tasks[1].task_id, "solution": "def broken(:\n", "model_step": 7},
        {"task_id": tasks[2].task_id, "solution": tasks[2].solutions[0]},
        {"task_id": tasks[3].task_id, "solution": tasks[3].solutions[0]},
    ]
    passed = {"verdict": "passed", "n_tests": 1, "tests": [{"index": 0, "verdict": "passed"}]}
    failed = {
        "verdict": "compile_error",
        "n_tests": 1,
        "tests": [{"index": 0, "verdict": "compile_error", "error_type": "SyntaxError", "message": "bad"}],
    }
    results = [
        {"task_id": t.task_id, "completion_id": 0, "passed": r is passed, **r}
        for t, r in zip(tasks, [passed, failed, passed, passed], strict=True)
    ]
    return tasks, write_jsonl(tmp_path / "s.jsonl", samples), write_jsonl(tmp_path / "r.jsonl", results)


def test_add_search_stats_export(evaluated, tmp_path: Path) -> None:
    tasks, samples, results = evaluated
    db = tmp_path / "mem.db"
    out = add_main(db, tasks=tasks, samples=samples, results=results, model_step=3)
    assert (out["added_attempts"], out["new_tasks"], out["passed"]) == (4, 4, 3)

    stats = stats_main(db)
    assert stats["attempts_per_verdict"] == {"compile_error": 1, "passed": 3}
    assert stats["tasks_per_split"] == {"train": 4}

    found = search_main(db, tasks[0].task_id, k=2)
    assert found["query_is_task_id"]
    assert tasks[0].task_id not in [e["task_id"] for e in found["examples"]]
    assert len(found["examples"]) == 2
    json.dumps(found)  # printable as JSON

    exported = export_main(db, tmp_path / "out" / "attempts.jsonl")
    assert exported["exported_attempts"] == 4
    attempts = read_attempts(exported["out"])
    assert attempts[0].program == tasks[0].solutions[0]  # completion appended to the prompt
    assert attempts[0].rewards == {"unit": 1.0} and attempts[0].model_step == 3
    assert attempts[1].model_step == 7 and attempts[1].errors == ("SyntaxError: bad",)

    again = add_main(tmp_path / "copy.db", attempts_file=exported["out"])
    assert (again["added_attempts"], again["new_tasks"]) == (4, 4)
    assert read_attempts(export_main(tmp_path / "copy.db", tmp_path / "b.jsonl.gz")["out"]) == attempts


def test_mismatched_files_are_rejected(evaluated, tmp_path: Path) -> None:
    tasks, samples, results = evaluated
    short = write_jsonl(tmp_path / "short.jsonl", [json.loads(results.read_text().splitlines()[0])])
    with pytest.raises(ValueError, match=r"4 samples but .* 1 results"):
        add_main(tmp_path / "m.db", tasks=tasks, samples=samples, results=short)
    with pytest.raises(ValueError, match="is not among the 1 tasks"):
        add_main(tmp_path / "m.db", tasks=tasks[1:2], samples=samples, results=results)
    with pytest.raises(ValueError, match="needs the samples file"):
        add_main(tmp_path / "m.db", samples=samples)
