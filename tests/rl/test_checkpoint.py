"""Checkpoints: atomic, pruned, and restoring optimiser, scheduler and every RNG."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from codefalcon.rl.checkpoint import (
    config_changes,
    latest_checkpoint,
    list_checkpoints,
    load_trainer_state,
    save_checkpoint,
)
from codefalcon.rl.metrics_log import MetricsLog, read_metrics


class _Model(torch.nn.Linear):
    def save_pretrained(self, folder: Path) -> None:
        Path(folder).mkdir(parents=True)
        torch.save(self.state_dict(), Path(folder) / "weights.pt")


def _setup():
    model = _Model(2, 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    model(torch.ones(1, 2)).sum().backward()
    optimizer.step()
    scheduler.step()
    return model, optimizer, scheduler


def test_save_restore_rng_optimizer_scheduler(tmp_path: Path) -> None:
    model, optimizer, scheduler = _setup()
    save_checkpoint(tmp_path, 1, model, None, optimizer, scheduler, {"position": [0, 8]})
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    _, optimizer2, scheduler2 = _setup()
    checkpoint = latest_checkpoint(tmp_path)
    assert checkpoint is not None and checkpoint.state == {"position": [0, 8], "step": 1}
    load_trainer_state(checkpoint, optimizer2, scheduler2)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected
    assert scheduler2.get_last_lr() == scheduler.get_last_lr()
    assert optimizer2.state_dict()["state"][0]["step"] == optimizer.state_dict()["state"][0]["step"]


def test_trainer_state_is_read_onto_the_cpu_and_follows_the_parameters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A GPU-written checkpoint resumes anywhere: read with map_location, moved by the optimiser."""
    model, optimizer, scheduler = _setup()
    save_checkpoint(tmp_path, 1, model, None, optimizer, scheduler, {}, extra={"head": model.state_dict()})
    seen = []
    real_load = torch.load

    def spy(*args, **kwargs):
        seen.append(kwargs.get("map_location"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    model2, optimizer2, scheduler2 = _setup()
    extra = load_trainer_state(latest_checkpoint(tmp_path), optimizer2, scheduler2)
    assert seen == ["cpu"]
    for param in model2.parameters():
        state = optimizer2.state[param]
        assert state["exp_avg"].device == state["exp_avg_sq"].device == param.device
    assert torch.equal(extra["head"]["weight"], model.weight)


def test_cuda_rng_states_come_back_only_where_there_are_as_many_gpus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, optimizer, scheduler = _setup()
    with monkeypatch.context() as gpu:  # written "on a GPU machine": CUDA RNG states in the file
        gpu.setattr(torch.cuda, "is_available", lambda: True)
        gpu.setattr(torch.cuda, "get_rng_state_all", lambda: [torch.zeros(16, dtype=torch.uint8)])
        save_checkpoint(tmp_path, 1, model, None, optimizer, scheduler, {})
    expected = torch.rand(1).item()  # the first draw after the save
    _, optimizer2, scheduler2 = _setup()  # draws from the RNG
    restored = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", restored.append)
    load_trainer_state(latest_checkpoint(tmp_path), optimizer2, scheduler2)
    assert restored == []
    assert torch.rand(1).item() == expected  # the CPU RNG still comes back
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    load_trainer_state(latest_checkpoint(tmp_path), optimizer2, scheduler2)
    assert len(restored) == 1 and torch.equal(restored[0][0], torch.zeros(16, dtype=torch.uint8))


def test_unfinished_checkpoints_are_ignored_and_old_ones_pruned(tmp_path: Path) -> None:
    model, optimizer, scheduler = _setup()
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, step, model, None, optimizer, scheduler, {}, keep=2)
    (tmp_path / "step-000004.tmp").mkdir()  # a kill in the middle of writing step 4
    assert [c.step for c in list_checkpoints(tmp_path)] == [2, 3]
    assert latest_checkpoint(tmp_path).step == 3


def test_metrics_log_drops_steps_after_the_resumed_checkpoint(tmp_path: Path) -> None:
    log = MetricsLog(tmp_path, tensorboard=False)
    for step in (1, 2, 3):
        log.log(step, {"loss": torch.tensor(float(step))})
    with (tmp_path / "metrics.jsonl").open("a") as handle:
        handle.write('{"step": 4, "lo')  # torn by a kill
    MetricsLog(tmp_path, resume_step=2, tensorboard=False).log(3, {"loss": 30.0})
    assert [(r["step"], r["loss"]) for r in read_metrics(tmp_path / "metrics.jsonl")] == [
        (1, 1.0),
        (2, 2.0),
        (3, 30.0),
    ]


def test_config_changes_name_every_differing_key_except_the_free_ones() -> None:
    saved = {"lr": 0.001, "grpo": {"beta": 0.0, "eps_high": 0.28}, "max_steps": 4, "lora": None}
    current = {"lr": 0.002, "grpo": {"beta": 0.0, "eps_high": 0.3}, "max_steps": 8, "lora": {"r": 8}}
    assert config_changes(saved, current, {"max_steps"}) == [
        "lr: 0.001 -> 0.002",
        "grpo.eps_high: 0.28 -> 0.3",
        'lora: null -> {"r": 8}',
    ]
    assert config_changes(saved, saved) == []
    # a section named free frees every key under it; a key only one side has is "(absent)"
    assert config_changes({"grpo": {"beta": 0.0}}, {"grpo": {"beta": 1.0}}, {"grpo"}) == []
    assert config_changes({"a": 1}, {"a": 1, "b": [1, 2]}) == ["b: (absent) -> [1, 2]"]


def test_full_steps_top_up_an_epochs_leftover_from_its_start() -> None:
    from itertools import islice

    from codefalcon.rl.run_dir import seeded_epochs

    plain = list(islice(seeded_epochs(5, 2, "k", (0, 0)), 3))
    assert [len(items) for items, _ in plain] == [2, 2, 1]  # the epoch's last step: its leftover
    full = list(islice(seeded_epochs(5, 2, "k", (0, 0), full_steps=True), 6))
    first_epoch = [items for items, _ in full[:3]]
    assert [len(items) for items in first_epoch] == [2, 2, 2]
    assert all(len(set(items)) == 2 for items, _ in full)  # never the same item twice in a step
    seen = [i for items in first_epoch for i in items]
    assert set(seen) == set(range(5)) and seen[-1] == seen[0]  # topped up with its first item
    assert [after for _, after in full[:3]] == [(0, 2), (0, 4), (1, 0)]
    # the same order as without topping up, and a restart from any position continues exactly
    assert [items for items, _ in plain] == [first_epoch[0], first_epoch[1], first_epoch[2][:1]]
    for k in range(5):
        resumed = list(islice(seeded_epochs(5, 2, "k", full[k][1], full_steps=True), 6 - k - 1))
        assert resumed == full[k + 1 :]
    # a set no bigger than a step is the whole step, as before
    assert [sorted(items) for items, _ in islice(seeded_epochs(3, 4, "k", (0, 0), True), 2)] == [
        [0, 1, 2]
    ] * 2
