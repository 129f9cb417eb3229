"""`TaskSource` lists: several sources pooled, e.g. MBPP train with generated tasks."""

from __future__ import annotations

from pathlib import Path

import pytest

from codefalcon.configs import load_config
from codefalcon.rl.train_config import TrainConfig
from codefalcon.tasks.jsonl import save_tasks_jsonl
from codefalcon.tasks.source import TaskSource, load_sources
from codefalcon.tasks.synth import generate_tasks, mbpp_form


def test_sources_pool_in_order_and_refuse_a_shared_task_id(tmp_path: Path, shared_data: Path) -> None:
    synth = tmp_path / "synth.jsonl"
    save_tasks_jsonl([mbpp_form(t) for t in generate_tasks(5, seed=1)], synth)
    mbpp = TaskSource(benchmark="mbpp", path=str(shared_data / "mbpp.jsonl"), split="train")
    generated = TaskSource(benchmark="jsonl", path=str(synth), split="train")
    tasks = load_sources([mbpp, generated])
    assert len(tasks) == 374 + 5
    assert tasks[0].task_id == "Mbpp/601" and tasks[-1].task_id == "synth/train/4"
    assert [t.task_id for t in load_sources(generated)] == [t.task_id for t in tasks[-5:]]
    with pytest.raises(ValueError, match=r"train\[2\]: task id 'synth/train/0' is also in train\[1\]"):
        load_sources([mbpp, generated, generated])


def test_train_config_takes_one_source_or_a_list() -> None:
    one = load_config(TrainConfig, None, ["model=m", "train={benchmark: humaneval}"])
    assert isinstance(one.train, TaskSource)
    two = load_config(
        TrainConfig, None, ["model=m", "train=[{benchmark: humaneval}, {benchmark: jsonl, path: t.jsonl}]"]
    )
    assert isinstance(two.train, list) and [s.benchmark for s in two.train] == ["humaneval", "jsonl"]
