"""Difficulty filtering: the train tasks a probe's results file puts in the pass-rate band."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from pydantic import ValidationError

import codefalcon.rl.train as train_module
from codefalcon.configs import load_config
from codefalcon.rl.task_filter import filter_by_pass_rate, pass_rates
from codefalcon.rl.train import train_rl
from codefalcon.rl.train_config import TrainConfig
from codefalcon.tasks.jsonl import save_tasks_jsonl
from codefalcon.tasks.synth import generate_splits


def _results(path: Path, rows: list[tuple[str, bool]]) -> Path:
    numbers: dict[str, int] = {}
    with path.open("w") as f:
        for task_id, passed in rows:
            numbers[task_id] = numbers.get(task_id, -1) + 1
            verdict = "passed" if passed else "failed"
            record = {
                "task_id": task_id,
                "completion_id": numbers[task_id],
                "passed": passed,
                "verdict": verdict,
            }
            f.write(json.dumps(record) + "\n")
    return path


@pytest.fixture(scope="module")
def train_tasks():
    return generate_splits(4, 1, seed=5, difficulty="easy")[0]


def test_pass_rates_and_band_hand_counted(train_tasks, tmp_path: Path) -> None:
    a, b, c, _ = (task.task_id for task in train_tasks)
    # a: 0 of 4, b: 1 of 4, c: 4 of 4, d never probed; a stray id from elsewhere is ignored
    rows = [(a, False)] * 4 + [(b, False), (b, True), (b, False), (b, False)] + [(c, True)] * 4
    path = _results(tmp_path / "r.jsonl", [*rows, ("Mbpp/601", True)])
    assert pass_rates(path) == {a: 0.0, b: 0.25, c: 1.0, "Mbpp/601": 1.0}

    kept, report = filter_by_pass_rate(train_tasks, path, 0.01, 1.0)
    assert [t.task_id for t in kept] == [b, c]
    assert (report.kept, report.probed, report.total) == (2, 3, 4)
    kept, _ = filter_by_pass_rate(train_tasks, path, 0.01, 0.99)  # variance only: c always passes
    assert [t.task_id for t in kept] == [b]
    kept, _ = filter_by_pass_rate(train_tasks, path, 0.0, 0.25)  # both bounds inclusive
    assert [t.task_id for t in kept] == [a, b]


def test_drop_solved_removes_the_tasks_a_second_results_file_passed(train_tasks, tmp_path: Path) -> None:
    a, b, c, d = (task.task_id for task in train_tasks)
    probe = _results(tmp_path / "probe.jsonl", [(a, False), (a, True), (b, True), (c, True), (d, False)])
    # the greedy run: b passed, c failed, a passed once in two rows (solved), d absent
    greedy = _results(tmp_path / "greedy.jsonl", [(a, False), (a, True), (b, True), (c, False)])
    kept, report = filter_by_pass_rate(train_tasks, probe, 0.01, 1.0, drop_solved=greedy)
    assert [t.task_id for t in kept] == [c]
    assert (report.kept, report.probed, report.total, report.dropped_solved) == (1, 4, 4, 2)
    # a task outside the band is not counted as dropped for being solved
    kept, report = filter_by_pass_rate(train_tasks, probe, 0.6, 1.0, drop_solved=greedy)
    assert ([t.task_id for t in kept], report.dropped_solved) == ([c], 1)
    with pytest.raises(ValueError, match=r"none of the 4 probed .* 1 of them solved in .*greedy\.jsonl"):
        filter_by_pass_rate(train_tasks, probe, 0.4, 0.6, drop_solved=greedy)
    with pytest.raises(FileNotFoundError, match=r"train_filter\.drop_solved: no such file: .*gone\.jsonl"):
        filter_by_pass_rate(train_tasks, probe, 0.01, 1.0, drop_solved=tmp_path / "gone.jsonl")
    other = _results(tmp_path / "other.jsonl", [("Mbpp/11", True)])
    with pytest.raises(ValueError, match=r"train_filter\.drop_solved: .*other\.jsonl has no rows"):
        filter_by_pass_rate(train_tasks, probe, 0.01, 1.0, drop_solved=other)


def test_results_for_other_tasks_or_an_empty_band_are_errors(train_tasks, tmp_path: Path) -> None:
    other = _results(tmp_path / "other.jsonl", [("Mbpp/11", True)])
    with pytest.raises(ValueError, match=r"other\.jsonl has no rows for any of the 4 train tasks"):
        filter_by_pass_rate(train_tasks, other, 0.01, 1.0)
    with pytest.raises(FileNotFoundError, match=r"train_filter\.results: no such file: .*gone\.jsonl"):
        filter_by_pass_rate(train_tasks, tmp_path / "gone.jsonl", 0.01, 1.0)
    never = _results(tmp_path / "never.jsonl", [(train_tasks[0].task_id, False)])
    with pytest.raises(ValueError, match=r"none of the 1 probed train tasks .* \[0.01, 1.0\]"):
        filter_by_pass_rate(train_tasks, never, 0.01, 1.0)


def test_band_is_validated(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"min_pass_rate 0\.5 is above max_pass_rate 0\.2"):
        TrainConfig.model_validate(
            {
                "model": "m",
                "train": {"benchmark": "jsonl", "path": "t.jsonl"},
                "train_filter": {"results": "r.jsonl", "min_pass_rate": 0.5, "max_pass_rate": 0.2},
            }
        )


def test_train_learns_only_from_the_tasks_in_the_band(
    tiny_dir: Path,
    train_tasks,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tasks = tmp_path / "tasks.jsonl"
    save_tasks_jsonl(train_tasks, tasks)
    keep, solved = train_tasks[1].task_id, train_tasks[2].task_id
    probe = _results(
        tmp_path / "probe.jsonl", [(t.task_id, t.task_id in (keep, solved)) for t in train_tasks]
    )
    greedy = _results(tmp_path / "greedy.jsonl", [(keep, False), (solved, True)])
    overrides = {
        "algo": "rft",
        "model": str(tiny_dir),
        "train": {"benchmark": "jsonl", "path": str(tasks), "split": "train"},
        "train_filter": {"results": str(probe), "drop_solved": str(greedy)},
        "out_dir": str(tmp_path / "run"),
        "device": "cpu",
        "max_steps": 2,
        "tasks_per_step": 2,
        "group_size": 2,
        "sampling": {"max_new_tokens": 4, "batch_size": 4},
        "tensorboard": False,
        "exec_workers": 1,
    }
    missing = {**overrides, "train_filter": {"results": str(tmp_path / "gone.jsonl")}}
    with pytest.raises(FileNotFoundError, match=r"train_filter\.results: no such file"):
        train_rl(load_config(TrainConfig, None, [f"{k}={json.dumps(v)}" for k, v in missing.items()]))
    assert not (tmp_path / "run").exists()  # refused before the run folder or the model
    config = load_config(TrainConfig, None, [f"{k}={json.dumps(v)}" for k, v in overrides.items()])
    seen: list[str] = []
    real_step = train_module._train_step

    def recording(train_step, step, tasks):
        seen.extend(task.task_id for task in tasks)
        return real_step(train_step, step, tasks)

    monkeypatch.setattr(train_module, "_train_step", recording)
    with caplog.at_level(logging.INFO, logger="codefalcon.rl.session"):
        summary = train_rl(config, progress=False)
    assert (
        "train_filter: 1 of 4 train tasks (4 probed) have a pass rate in [0.01, 1], "
        f"after dropping 1 solved in {greedy}"
    ) in caplog.text
    assert seen and set(seen) == {keep} and summary["train_tasks"] == 1
