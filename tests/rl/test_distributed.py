"""Training on two processes (torch.distributed, gloo on the CPU) is training on one.

The runs go through ``torchrun`` (``python -m torch.distributed.run --standalone``) and the
`codefalcon train` command line, as a user launches them, with the program-dependent rewards of
tests/rl/distributed_worker.py (an untrained tiny model fails every test, and GRPO learns nothing
from equal rewards). One GRPO step holds 2 tasks x 3 samples; on two ranks each takes one task.
With ``micro_batch_size`` equal to the group size, each micro-batch is one task's rows in both
layouts, so every forward pass is the same computation and the two-term gradient sum is exact:
the weights agree bit for bit (checked with the issue's atol of 1e-5). Misaligned micro-batches
differ in float rounding, which Adam's first steps amplify where a gradient is near zero.
"""

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

from codefalcon.rl.checkpoint import latest_checkpoint
from codefalcon.rl.metrics_log import read_metrics
from codefalcon.tasks.jsonl import save_tasks_jsonl
from codefalcon.tasks.synth import generate_splits

WORKER = Path(__file__).with_name("distributed_worker.py")
ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}  # one thread: the same sums


@pytest.fixture(scope="module")
def tasks_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    train, test = generate_splits(16, 4, seed=7, difficulty="easy")
    path = tmp_path_factory.mktemp("dist-tasks") / "tasks.jsonl"
    save_tasks_jsonl(train + test, path)
    return path


def _command(model: Path, tasks: Path, out: Path, processes: int, **extra) -> list[str]:
    options = {
        "model": str(model),
        "train": {"benchmark": "jsonl", "path": str(tasks), "split": "train"},
        "eval": {"benchmark": "jsonl", "path": str(tasks), "split": "test"},
        "eval_limit": 2,
        "out_dir": str(out),
        "device": "cpu",
        "max_steps": 4,
        "tasks_per_step": 2,
        "group_size": 3,
        "micro_batch_size": 3,  # one task's group per micro-batch, on one rank or two
        "lr": 1e-3,
        # fp32 on every CPU: with native bf16 (AVX512-BF16, AMX) `auto` would autocast, and bf16
        # rounding of sums taken in another order outgrows the 1e-5 these tests allow
        "bf16_autocast": False,
        "save_every": 2,
        "eval_every": 100,
        "sampling": {"max_new_tokens": 12, "batch_size": 3},
        "eval_max_new_tokens": 12,
        "tensorboard": False,
        "exec_workers": 1,
        "grpo": {"mask_truncated": False},  # the untrained model never stops within 12 tokens
        **extra,
    }
    overrides = [f"{k}={json.dumps(v)}" for k, v in options.items()]
    launcher = [sys.executable]
    if processes > 1:
        launcher += ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    return [*launcher, str(WORKER), *overrides]


def _train(command: list[str]) -> None:
    done = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def _weights(run: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(run / "final" / "model.safetensors")


def _max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def _steps(run: Path) -> list[tuple]:
    keys = ("reward/total", "exec/pass_rate", "loss/grpo/loss", "optim/grad_norm", "sample/length_mean")
    records = read_metrics(run / "metrics.jsonl")
    return [(r["step"], *(round(r[k], 6) for k in keys)) for r in records if "reward/total" in r]


@pytest.fixture(scope="module")
def straight(tiny_dir: Path, tasks_file: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """Uninterrupted runs of the same config on one process and on two."""
    root = tmp_path_factory.mktemp("dist-runs")
    runs = {n: root / f"{n}-processes" for n in (1, 2)}
    for n, out in runs.items():
        _train(_command(tiny_dir, tasks_file, out, n))
    return runs


@pytest.mark.slow
def test_two_processes_train_the_weights_of_one(tiny_dir: Path, straight: dict[int, Path]) -> None:
    from safetensors.torch import load_file

    one, two = _weights(straight[1]), _weights(straight[2])
    start = load_file(tiny_dir / "model.safetensors")
    assert max(float((one[k] - start[k]).abs().max()) for k in start) > 1e-3, "training moved nothing"
    for k in one:
        torch.testing.assert_close(two[k], one[k], atol=1e-5, rtol=0)
    # rank 0 logs the global step: the same rewards, loss and gradient norm as one process
    assert _steps(straight[2]) == _steps(straight[1])
    assert [r["step"] for r in read_metrics(straight[2] / "metrics.jsonl")] == [0, 1, 2, 3, 4, 4]
    assert (straight[2] / "eval" / "after" / "summary.json").is_file()


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (torchrun's ranks)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.mark.slow
def test_kill_9_of_one_rank_then_resume_on_two(
    tiny_dir: Path, tasks_file: Path, tmp_path: Path, straight: dict[int, Path]
) -> None:
    """SIGKILL rank 1 after the first checkpoint: torchrun stops rank 0 too, and a rerun on two
    processes resumes from the checkpoint and ends where the uninterrupted run did."""
    out = tmp_path / "killed"
    command = _command(tiny_dir, tasks_file, out, 2)
    launcher = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while latest_checkpoint(out / "checkpoints") is None and time.monotonic() < deadline:
        assert launcher.poll() is None, "training ended before its first checkpoint"
        time.sleep(0.05)
    ranks = sorted(_children(launcher.pid))
    assert len(ranks) == 2, ranks
    os.kill(ranks[1], signal.SIGKILL)
    assert launcher.wait(timeout=120) != 0
    assert latest_checkpoint(out / "checkpoints").step < 4
    _train(command)
    torch.testing.assert_close(_weights(out), _weights(straight[2]), atol=1e-5, rtol=0)
    assert _max_difference(_weights(out), _weights(straight[2])) == 0.0  # resumed exactly
    assert _steps(out) == _steps(straight[2])  # each step logged once, as in the straight run


@pytest.mark.slow
def test_ppo_and_coderl_on_two_processes(tiny_dir: Path, tasks_file: Path, tmp_path: Path) -> None:
    """PPO whitens advantages and steps its KL coefficient over both ranks' samples: 1e-5 of one
    process (its sums are taken in another order, so not bit for bit). CodeRL's CE step runs too."""
    runs = {(algo, n): tmp_path / f"{algo}-{n}" for algo, n in [("ppo", 1), ("ppo", 2), ("coderl", 2)]}
    for (algo, n), out in runs.items():
        _train(_command(tiny_dir, tasks_file, out, n, algo=algo, max_steps=2))
    one, two = _weights(runs["ppo", 1]), _weights(runs["ppo", 2])
    for k in one:
        torch.testing.assert_close(two[k], one[k], atol=1e-5, rtol=0)
    beta = [
        [r["kl/next_beta"] for r in read_metrics(runs["ppo", n] / "metrics.jsonl") if "kl/beta" in r]
        for n in (1, 2)
    ]
    assert len(beta[0]) == 2 and beta[1] == pytest.approx(beta[0], abs=1e-9)
    coderl = [r for r in read_metrics(runs["coderl", 2] / "metrics.jsonl") if "reward/total" in r]
    assert [r["step"] for r in coderl] == [1, 2] and all(r["loss/ce"] > 0 for r in coderl)


def test_falcon_and_too_few_tasks_are_refused_on_several_processes(
    tiny_dir: Path, tasks_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import codefalcon.rl.session as session_module
    import codefalcon.rl.train as train_module
    from codefalcon.configs import load_config
    from codefalcon.rl.distributed import World
    from codefalcon.rl.train import train_rl
    from codefalcon.rl.train_config import TrainConfig

    def config(**extra) -> TrainConfig:
        overrides = _command(tiny_dir, tasks_file, tmp_path, 1, **extra)[2:]
        return load_config(TrainConfig, None, overrides)

    monkeypatch.setattr(train_module, "current_world", lambda: World(0, 2))
    monkeypatch.setattr(session_module, "current_world", lambda: World(0, 2))
    with pytest.raises(ValueError, match="falcon does not run on several processes yet"):
        train_rl(config(algo="falcon"), progress=False)
    with pytest.raises(ValueError, match="set tasks_per_step >= 2"):
        train_rl(config(tasks_per_step=1), progress=False)


@pytest.mark.slow
def test_world_collectives_on_two_ranks() -> None:
    """Gradient sums (with a gradient missing on one rank), weighted metric merges, broadcast."""
    checks = Path(__file__).with_name("distributed_world_checks.py")
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(checks),
    ]
    done = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]


def test_a_world_shards_whole_tasks_and_merges_metrics_by_weight() -> None:
    from codefalcon.rl.distributed import SINGLE, World

    assert World(0, 2).shard([0, 1, 2, 3, 4]) == [0, 2, 4] and World(1, 2).shard([0, 1, 2, 3, 4]) == [1, 3]
    assert SINGLE.shard([0, 1]) == [0, 1] and SINGLE.is_writer and not World(1, 2).is_writer
    assert SINGLE.mean_metrics({"a": 1.0}, 3) == {"a": 1.0}
