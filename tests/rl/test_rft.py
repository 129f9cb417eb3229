"""RFT (rejection-sampling fine-tuning): which samples are kept, its loss, and the recipe end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import codefalcon.rl.recipes.rft as rft_recipe
from codefalcon.configs import load_config
from codefalcon.models import load_policy
from codefalcon.rl import rft_loss, verified_rows
from codefalcon.rl.metrics_log import read_metrics
from codefalcon.rl.train import train_rl
from codefalcon.rl.train_config import TrainConfig
from codefalcon.tasks.jsonl import save_tasks_jsonl
from codefalcon.tasks.synth import generate_splits
from support import close


def test_verified_rows_keeps_each_distinct_passing_program_once_per_group():
    passed = [True, True, False, True, True, True, False, False]
    programs = ["a", " a\n", "b", "c", "a", "d", "e", "f"]
    # group 0: a kept, " a\n" is a again, b failed, c kept; group 1: a kept (groups are separate), d kept
    assert verified_rows(passed, programs, 4).tolist() == [True, False, False, True, True, True, False, False]
    # without unique both copies of a count; max_per_task 1 keeps each group's first
    assert verified_rows(passed, programs, 4, unique=False).tolist() == [
        True,
        True,
        False,
        True,
        True,
        True,
        False,
        False,
    ]
    assert verified_rows(passed, programs, 4, max_per_task=1).tolist() == [
        True,
        False,
        False,
        False,
        True,
        False,
        False,
        False,
    ]


def test_verified_rows_rejects_partial_groups():
    with pytest.raises(ValueError, match="group_size 4"):
        verified_rows([True] * 6, ["x"] * 6, 4)


def test_rft_loss_hand_computed_with_gradients():
    # -inf in padding or in a dropped row must not leak into the loss or the gradient
    logp = torch.tensor(
        [[-1.0, -2.0], [-0.5, float("-inf")], [-9.0, -9.0]], dtype=torch.float64, requires_grad=True
    )
    mask = torch.tensor([[1, 1], [1, 0], [0, 0]])  # row 2 failed: not kept
    loss, stats = rft_loss(logp, mask)
    close(loss, 3.5 / 3)  # -(-1 - 2 - 0.5) / 3 kept tokens
    assert stats["nll"] == pytest.approx(3.5 / 3)
    loss.backward()
    close(logp.grad, [[-1 / 3, -1 / 3], [-1 / 3, 0.0], [0.0, 0.0]])


@pytest.fixture(scope="module")
def tasks_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    train, test = generate_splits(8, 2, seed=3, difficulty="easy")
    path = tmp_path_factory.mktemp("rft-tasks") / "tasks.jsonl"
    save_tasks_jsonl(train + test, path)
    return path


def _config(model: Path, tasks: Path, out: Path, **extra) -> TrainConfig:
    overrides = {
        "algo": "rft",
        "model": str(model),
        "train": {"benchmark": "jsonl", "path": str(tasks), "split": "train"},
        "out_dir": str(out),
        "device": "cpu",
        "max_steps": 2,
        "tasks_per_step": 2,
        "group_size": 3,
        "micro_batch_size": 4,
        "lr": 1e-3,
        "sampling": {"max_new_tokens": 12, "batch_size": 6},
        "tensorboard": False,
        "exec_workers": 1,
        **extra,
    }
    return load_config(TrainConfig, None, [f"{k}={json.dumps(v)}" for k, v in overrides.items()])


def test_rft_learns_from_passing_samples_only(
    tiny_dir: Path, tasks_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = load_policy(tiny_dir).model.state_dict()
    # nothing passes at first: no sample is kept and no weight moves
    train_rl(_config(tiny_dir, tasks_file, tmp_path / "none"), progress=False)
    records = [r for r in read_metrics(tmp_path / "none" / "metrics.jsonl") if "rft/kept" in r]
    assert [r["rft/kept"] for r in records] == [0.0, 0.0]
    assert all(r.get("loss/skipped_empty_step") == 1.0 for r in records)
    after = load_policy(tmp_path / "none" / "final").model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)

    # the untrained model passes no test and never stops within 12 tokens: count every sample as
    # passed, and keep the cut ones
    real = verified_rows

    def all_passed(passed, programs, group_size, **options):
        return real([True] * len(passed), programs, group_size, **options)

    monkeypatch.setattr(rft_recipe, "verified_rows", all_passed)
    train_rl(_config(tiny_dir, tasks_file, tmp_path / "all", rft={"drop_truncated": False}), progress=False)
    records = [r for r in read_metrics(tmp_path / "all" / "metrics.jsonl") if "rft/kept" in r]
    assert sum(r["rft/kept"] for r in records) > 0
    kept_steps = [r for r in records if r["rft/kept"] > 0]
    assert all(r["loss/rft/nll"] > 0 and r["rft/tokens"] > 0 for r in kept_steps)
    assert all(0 < r["rft/tasks_with_kept"] <= 1 for r in kept_steps)
    after = load_policy(tmp_path / "all" / "final").model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before), "no weight moved"


def test_rft_refuses_tis_cap(tiny_dir: Path, tasks_file: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="tis_cap: rft"):
        load_config(
            TrainConfig,
            None,
            [
                "algo=rft",
                f"model={tiny_dir}",
                f'train={{"benchmark": "jsonl", "path": "{tasks_file}"}}',
                "tis_cap=2",
                "backend.name=ctranslate2",
                "sampling.temperature=1",
            ],
        )
