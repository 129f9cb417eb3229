"""The RL loop end to end on the tiny model: every algorithm runs, logs, and resumes exactly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import codefalcon.rl.train as train_module
from codefalcon.configs import load_config
from codefalcon.models import load_policy
from codefalcon.rl.checkpoint import latest_checkpoint
from codefalcon.rl.metrics_log import read_metrics
from codefalcon.rl.train import train_rl
from codefalcon.rl.train_config import TrainConfig
from codefalcon.tasks.jsonl import save_tasks_jsonl
from codefalcon.tasks.synth import generate_splits


@pytest.fixture(autouse=True)
def varied_rewards(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rewards that vary with the program, so group advantages are not all zero.

    An untrained tiny model fails every test, and GRPO correctly learns nothing from a group of
    equal rewards; these tests check the loop's mechanics, so the reward gets a bounded extra
    part that depends on the program text (composition keeps failing programs below passing ones).
    """
    from codefalcon.feedback import Reward, RewardScorer, compose

    def score(self, task, program, result, judgement=None):
        return compose(result, {"len": Reward((len(program) % 7) / 6, "test")}, {"len": 1.0})

    monkeypatch.setattr(RewardScorer, "score", score)


@pytest.fixture(scope="module")
def tasks_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    train, test = generate_splits(16, 4, seed=7, difficulty="easy")
    path = tmp_path_factory.mktemp("rl-tasks") / "tasks.jsonl"
    save_tasks_jsonl(train + test, path)
    return path


def _overrides(model: Path, tasks: Path, out: Path, **extra) -> list[str]:
    base = {
        "model": str(model),
        "train": {"benchmark": "jsonl", "path": str(tasks), "split": "train"},
        "eval": {"benchmark": "jsonl", "path": str(tasks), "split": "test"},
        "out_dir": str(out),
        "device": "cpu",  # also on a GPU machine: the exact-resume comparisons need CPU determinism
        "max_steps": 4,
        "tasks_per_step": 2,
        "group_size": 3,
        "micro_batch_size": 4,
        "lr": 1e-3,
        "save_every": 2,
        "eval_every": 100,
        "sampling": {"max_new_tokens": 12, "batch_size": 6},
        "eval_max_new_tokens": 12,
        "tensorboard": False,
        "exec_workers": 1,
        "grpo": {"mask_truncated": False},  # the untrained model never stops within 12 tokens
    }
    return [f"{k}={json.dumps(v)}" for k, v in {**base, **extra}.items()]


def _config(*args, **extra) -> TrainConfig:
    return load_config(TrainConfig, None, _overrides(*args, **extra))


@pytest.mark.parametrize("algo", ["grpo", "rloo", "ppo", "coderl", "falcon"])
def test_each_algorithm_trains_logs_and_saves(
    algo: str, tiny_dir: Path, tasks_file: Path, tmp_path: Path
) -> None:
    before = load_policy(tiny_dir).model.state_dict()
    summary = train_rl(_config(tiny_dir, tasks_file, tmp_path, algo=algo, max_steps=2), progress=False)
    assert summary["steps"] == 2 and summary["algo"] == algo
    assert summary["pass@1_before"] is not None and summary["pass@1_after"] is not None
    records = read_metrics(tmp_path / "metrics.jsonl")
    steps = [r for r in records if "reward/total" in r]
    assert [r["step"] for r in steps] == [1, 2]
    for record in steps:
        for key in ("exec/pass_rate", "time/generation", "time/execution", "time/update", "policy/entropy"):
            assert key in record, key
        assert abs(sum(v for k, v in record.items() if k.startswith("verdict/")) - 1.0) < 1e-9
    after = load_policy(tmp_path / "final").model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before), "no weight moved"
    assert (tmp_path / "eval" / "before" / "summary.json").is_file()
    assert (tmp_path / "eval" / "after" / "results.jsonl").is_file()


def test_algorithm_specific_metrics(tiny_dir: Path, tasks_file: Path, tmp_path: Path) -> None:
    train_rl(_config(tiny_dir, tasks_file, tmp_path / "ppo", algo="ppo", max_steps=1), progress=False)
    ppo = read_metrics(tmp_path / "ppo" / "metrics.jsonl")[-2]
    assert {"kl/kl", "kl/beta", "kl/next_beta", "loss/value/loss", "loss/policy/clipfrac"} <= set(ppo)
    train_rl(_config(tiny_dir, tasks_file, tmp_path / "grpo", algo="grpo", max_steps=1), progress=False)
    grpo = read_metrics(tmp_path / "grpo" / "metrics.jsonl")[-2]
    assert {"adv/frac_zero_std", "loss/grpo/clip_frac_high"} <= set(grpo)
    train_rl(_config(tiny_dir, tasks_file, tmp_path / "coderl", algo="coderl", max_steps=1), progress=False)
    coderl = read_metrics(tmp_path / "coderl" / "metrics.jsonl")[-2]
    assert {"coderl/baseline_reward", "loss/ce", "loss/coderl/loss"} <= set(coderl)
    train_rl(_config(tiny_dir, tasks_file, tmp_path / "falcon", algo="falcon", max_steps=1), progress=False)
    falcon = read_metrics(tmp_path / "falcon" / "metrics.jsonl")[-2]
    assert falcon["falcon/tasks"] == 2 and falcon["falcon/adapted_tasks"] >= 1
    assert {"falcon/meta_grad_norm", "falcon/inner_loss"} <= set(falcon)


def test_dynamic_sampling_trains_on_informative_groups_only(
    tiny_dir: Path, tasks_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from codefalcon.feedback import Reward, RewardScorer, compose

    def score(self, task, program, result, judgement=None):  # only even-numbered tasks' rewards vary
        varies = int(task.task_id.rsplit("/", 1)[1]) % 2 == 0
        return compose(
            result, {"len": Reward((len(program) % 7) / 6 if varies else 0.0, "test")}, {"len": 1.0}
        )

    monkeypatch.setattr(RewardScorer, "score", score)
    grpo = {"mask_truncated": False, "oversample": 3.0}  # 2 tasks a step + 4 extra
    train_rl(_config(tiny_dir, tasks_file, tmp_path, algo="grpo", max_steps=2, grpo=grpo), progress=False)
    steps = [r for r in read_metrics(tmp_path / "metrics.jsonl") if "reward/total" in r]
    assert len(steps) == 2
    for record in steps:
        assert 1 <= record["sample/groups_kept"] <= 2
        assert record["adv/frac_zero_std"] == 0.0  # what reached the loss all had variance
        assert record["adv/n_groups"] == record["sample/groups_kept"]


def test_sampling_stop_ends_rollouts_at_a_stop_sequence(
    tiny_dir: Path, tasks_file: Path, tmp_path: Path
) -> None:
    def first_step(out: Path, **sampling) -> dict:
        options = {"max_new_tokens": 12, "batch_size": 6, **sampling}
        train_rl(_config(tiny_dir, tasks_file, out, max_steps=1, eval=None, sampling=options), progress=False)
        return read_metrics(out / "metrics.jsonl")[0]

    full = first_step(tmp_path / "full")
    # The same seeded samples, each cut at its first of these (common in any code).
    cut = first_step(tmp_path / "cut", stop=[" ", "e", "t", "(", "\n"])
    assert cut["sample/length_mean"] < full["sample/length_mean"]
    assert cut["sample/truncated_frac"] < full["sample/truncated_frac"]


def test_oversample_is_refused_outside_grpo(tiny_dir: Path, tasks_file: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="oversample"):
        _config(tiny_dir, tasks_file, tmp_path, algo="ppo", grpo={"oversample": 2.0})


def test_group_size_one_is_rejected_for_grpo(tiny_dir: Path, tasks_file: Path, tmp_path: Path) -> None:
    from codefalcon.configs import ConfigError

    with pytest.raises(ConfigError, match="group_size must be >= 2 for grpo"):
        _config(tiny_dir, tasks_file, tmp_path, group_size=1)


def test_device_option(tiny_dir: Path, tasks_file: Path, tmp_path: Path) -> None:
    from codefalcon.configs import ConfigError

    assert TrainConfig.model_fields["device"].default == "auto"
    assert _config(tiny_dir, tasks_file, tmp_path, device="cuda:1").device == "cuda:1"  # checked at load
    with pytest.raises(ConfigError, match="device: Input should be a valid string"):
        _config(tiny_dir, tasks_file, tmp_path, device=0)
    with pytest.raises(ConfigError, match="device: must be 'auto', 'cpu', 'cuda' or 'cuda:N', got 'gpu'"):
        _config(tiny_dir, tasks_file, tmp_path, device="gpu")


def _comparable(records: list[dict]) -> list[tuple]:
    keys = ("reward/total", "exec/pass_rate", "loss/grpo/loss", "sample/length_mean", "falcon/inner_loss")
    return [(r["step"], *(round(r.get(k, -1.0), 6) for k in keys)) for r in records if "reward/total" in r]


@pytest.mark.parametrize("algo", ["grpo", "falcon"])
def test_resume_after_an_interrupt_continues_exactly(
    algo: str, tiny_dir: Path, tasks_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FALCON also rolls its long-term memory back to the checkpoint, so retrieval repeats too."""
    straight = tmp_path / "straight"
    train_rl(_config(tiny_dir, tasks_file, straight, algo=algo), progress=False)
    killed = tmp_path / "killed"
    real = train_module._train_step
    calls = {"n": 0}

    def dies_in_step_3(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train_module, "_train_step", dies_in_step_3)
    with pytest.raises(KeyboardInterrupt):
        train_rl(_config(tiny_dir, tasks_file, killed, algo=algo), progress=False)
    monkeypatch.setattr(train_module, "_train_step", real)
    assert latest_checkpoint(killed / "checkpoints").step == 2
    train_rl(_config(tiny_dir, tasks_file, killed, algo=algo), progress=False)
    assert _comparable(read_metrics(killed / "metrics.jsonl")) == _comparable(
        read_metrics(straight / "metrics.jsonl")
    )


@pytest.mark.slow
def test_kill_9_mid_training_then_resume(tiny_dir: Path, tasks_file: Path, tmp_path: Path) -> None:
    """A real SIGKILL of `codefalcon train`: after the rerun nothing is lost or duplicated.

    CodeRL's CE step moves the weights every step even when every sample fails, so a resume that
    restored the wrong weights, optimiser state, RNG or data position would change later steps.
    """

    def command(out: Path) -> list[str]:
        overrides = _overrides(tiny_dir, tasks_file, out, max_steps=6, algo="coderl")
        return [sys.executable, "-m", "codefalcon.cli", "train", *overrides]

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    straight = subprocess.run(
        command(tmp_path / "straight"), env=env, capture_output=True, text=True, timeout=600
    )
    assert straight.returncode == 0, straight.stderr[-2000:]
    out = tmp_path / "killed"
    process = subprocess.Popen(command(out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while latest_checkpoint(out / "checkpoints") is None and time.monotonic() < deadline:
        assert process.poll() is None, "training ended before its first checkpoint"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert latest_checkpoint(out / "checkpoints").step < 6
    result = subprocess.run(command(out), env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    a = read_metrics(tmp_path / "straight" / "metrics.jsonl")
    b = read_metrics(out / "metrics.jsonl")
    assert _comparable(b) == _comparable(a)
    assert [round(r["loss/ce"], 5) for r in b if "loss/ce" in r] == [
        round(r["loss/ce"], 5) for r in a if "loss/ce" in r
    ]


def test_coderl_with_a_critic_weighs_tokens(tiny_dir: Path, tasks_file: Path, tmp_path: Path) -> None:
    from codefalcon.critic import Critic
    from codefalcon.rl.critic_weights import CriticTokenWeights

    critic_dir = tmp_path / "critic"
    Critic.from_backbone(str(tiny_dir), max_problem_tokens=120, max_program_tokens=120).save(critic_dir)
    out = tmp_path / "run"
    config = _config(
        tiny_dir, tasks_file, out, algo="coderl", max_steps=1, coderl={"critic": str(critic_dir)}
    )
    train_rl(config, progress=False)
    record = read_metrics(out / "metrics.jsonl")[-2]
    assert "coderl/return_mean" in record and "loss/coderl/loss" in record
    weights = CriticTokenWeights(critic_dir)
    assert isinstance(weights.critic, Critic)


def test_resume_with_another_config_is_refused_naming_the_keys(
    tiny_dir: Path, tasks_file: Path, tmp_path: Path
) -> None:
    from codefalcon.rl.run_dir import ConfigChangedError

    run = {"max_steps": 1, "eval": None}
    train_rl(_config(tiny_dir, tasks_file, tmp_path, **run), progress=False)
    changed = {"lr": 2e-3, "grpo": {"mask_truncated": False, "eps_high": 0.3}}
    with pytest.raises(ConfigChangedError, match=r"lr: 0.001 -> 0.002; grpo.eps_high: 0.28 -> 0.3\. "):
        train_rl(
            _config(tiny_dir, tasks_file, tmp_path, **{**run, **changed, "max_steps": 2}), progress=False
        )
    # run length and save cadence may change: the same experiment, continued
    summary = train_rl(
        _config(tiny_dir, tasks_file, tmp_path, **{**run, "max_steps": 2, "save_every": 1}), False
    )
    assert summary["steps"] == 2
    summary = train_rl(
        _config(tiny_dir, tasks_file, tmp_path, **{**run, **changed, "max_steps": 3}),
        progress=False,
        allow_config_change=True,
    )
    assert summary["steps"] == 3
    assert latest_checkpoint(tmp_path / "checkpoints").state["config"]["grpo"]["eps_high"] == 0.3


def test_train_and_sft_commands_take_the_resume_flag() -> None:
    from typer.testing import CliRunner

    from codefalcon.cli import app

    for command in ("train", "sft"):
        result = CliRunner().invoke(app, [command, "--help"], terminal_width=200)
        assert result.exit_code == 0 and "--allow-config-change" in result.output


def test_lora_options_take_a_module_list_or_all_linear() -> None:
    from pydantic import ValidationError

    from codefalcon.rl.policy_setup import LoraOptions

    assert LoraOptions.model_validate({"target_modules": "all-linear"}).spec().target_modules == "all-linear"
    assert LoraOptions(target_modules=["c_fc"]).spec().target_modules == ("c_fc",)
    assert LoraOptions(target_modules=[]).spec().target_modules is None
    with pytest.raises(ValidationError, match="target_modules"):
        LoraOptions.model_validate({"target_modules": "all"})
