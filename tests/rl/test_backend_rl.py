"""RL with another sampling engine than HF: CTranslate2 in process, and ``codefalcon serve`` over HTTP.

Each run trains the tiny model two steps with a large learning rate, so one step visibly moves
the weights; the checks are that the engine samples from the trained weights after each sync
(its greedy log-probs equal the trained policy's, not the start's), that the gap between the
engine's and the trainer's log-probs is logged (and near 0, both engines being float32 here),
and that the truncated importance weights are applied.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import codefalcon.rl.session as session_module
from codefalcon.configs import ConfigError, load_config
from codefalcon.models import HFBackend, SamplingParams, load_policy
from codefalcon.rl.checkpoint import config_changes
from codefalcon.rl.metrics_log import read_metrics
from codefalcon.rl.run_dir import newer_keys_at_default
from codefalcon.rl.train import train_rl
from codefalcon.rl.train_config import ADDED_LATER, MAY_CHANGE_ON_RESUME, TrainConfig
from codefalcon.tasks.jsonl import save_tasks_jsonl
from codefalcon.tasks.synth import generate_splits
from conftest import roughen, serving

PROMPT = "def add(a, b):\n"
GREEDY = SamplingParams(temperature=0.0, max_new_tokens=8, logprobs=True)


@pytest.fixture(autouse=True)
def varied_rewards(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rewards that vary with the program (as in test_train.py), so advantages are not all 0."""
    from codefalcon.feedback import Reward, RewardScorer, compose

    def score(self, task, program, result, judgement=None):
        return compose(result, {"len": Reward((len(program) % 7) / 6, "test")}, {"len": 1.0})

    monkeypatch.setattr(RewardScorer, "score", score)


@pytest.fixture(scope="module")
def tasks_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    train, _ = generate_splits(8, 2, seed=7, difficulty="easy")
    path = tmp_path_factory.mktemp("backend-rl-tasks") / "tasks.jsonl"
    save_tasks_jsonl(train, path)
    return path


def config(model: Path, tasks: Path, out: Path, **extra: Any) -> TrainConfig:
    base = {
        "model": str(model),
        "train": {"benchmark": "jsonl", "path": str(tasks), "split": "train"},
        "out_dir": str(out),
        "device": "cpu",
        "max_steps": 2,
        "tasks_per_step": 2,
        "group_size": 2,
        "micro_batch_size": 4,
        "lr": 1e-2,  # one step moves the greedy log-probs well past float noise
        "sampling": {"max_new_tokens": 8, "batch_size": 4},
        "tensorboard": False,
        "exec_workers": 1,
        "grpo": {"mask_truncated": False},
    }
    return load_config(TrainConfig, None, [f"{k}={json.dumps(v)}" for k, v in {**base, **extra}.items()])


class Captured:
    """The session's engine, kept open past the run (its close is recorded and deferred)."""

    def __init__(self) -> None:
        self.backend: Any = None
        self.syncs = 0
        self.closed = False
        self._close: Any = None

    def make(self, *args: Any, **kwargs: Any) -> Any:
        backend = original_make_backend(*args, **kwargs)
        sync, self._close = backend.sync, backend.close

        def counted_sync(policy: Any) -> None:
            self.syncs += 1
            sync(policy)

        def recorded_close() -> None:
            self.closed = True

        backend.sync, backend.close = counted_sync, recorded_close
        self.backend = backend
        return backend

    def release(self) -> None:
        if self._close is not None:
            self._close()


original_make_backend = session_module.make_backend


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> Iterator[Captured]:
    capture = Captured()
    monkeypatch.setattr(session_module, "make_backend", capture.make)
    yield capture
    capture.release()


def greedy_logprobs(backend: Any) -> list[float]:
    (completion,) = backend.generate([PROMPT], GREEDY)[0]
    return list(completion.logprobs)


def step_records(out: Path) -> list[dict]:
    return [r for r in read_metrics(out / "metrics.jsonl") if "reward/total" in r]


def check_engine_follows_training(captured: Captured, start: Path, out: Path, syncs: int) -> list[dict]:
    """The engine samples from the trained policy, not the start one; the run logged gap and syncs."""
    assert captured.closed and captured.syncs == syncs
    trained = greedy_logprobs(HFBackend(load_policy(out / "final")))
    before = greedy_logprobs(HFBackend(load_policy(start)))
    engine = greedy_logprobs(captured.backend)
    assert engine == pytest.approx(trained, abs=1e-4)
    assert max(abs(a - b) for a, b in zip(engine, before, strict=False)) > 1e-2
    records = step_records(out)
    assert [r["step"] for r in records] == [1, 2]
    for record in records:
        assert record["time/sync"] >= 0.0
        assert math.isfinite(record["sample/logp_gap"]) and record["sample/logp_gap_abs"] < 1e-3
        assert record["sample/logp_covered"] == 1.0
    return records


def test_grpo_with_ctranslate2_syncs_logs_the_gap_and_weighs_tokens(
    tiny_dir: Path, tasks_file: Path, tmp_path: Path, captured: Captured
) -> None:
    backend = {"name": "ctranslate2", "threads": 1, "sync_every": 1}
    train_rl(config(tiny_dir, tasks_file, tmp_path, backend=backend, tis_cap=2.0), progress=False)
    records = check_engine_follows_training(captured, tiny_dir, tmp_path, syncs=2)  # after steps 1, 2
    for record in records:  # float32 engine and trainer agree: the weights are all about 1
        assert record["sample/tis_weight_mean"] == pytest.approx(1.0, abs=1e-3)
        assert record["sample/tis_capped_frac"] == 0.0


@pytest.fixture
def served(tiny_dir: Path, tmp_path: Path) -> Iterator[str]:
    """``codefalcon serve`` on a *different* model than the run starts from (rough weights), so
    only the start-of-run sync makes the server sample from the trained policy."""
    with serving(roughen(load_policy(tiny_dir), seed=4), tmp_path / "served") as url:
        yield url


def test_ppo_through_codefalcon_serve_syncs_at_start_and_after_steps(
    tiny_dir: Path, tasks_file: Path, tmp_path: Path, captured: Captured, served: str
) -> None:
    backend = {"name": "openai", "url": served}
    out = tmp_path / "run"
    train_rl(config(tiny_dir, tasks_file, out, algo="ppo", backend=backend, tis_cap=2.0), progress=False)
    records = check_engine_follows_training(captured, tiny_dir, out, syncs=3)  # start, steps 1 and 2
    assert all("sample/tis_weight_mean" in r and "loss/policy/loss" in r for r in records)


def test_coderl_with_ctranslate2_weighs_its_returns(
    tiny_dir: Path, tasks_file: Path, tmp_path: Path, captured: Captured
) -> None:
    backend = {"name": "ctranslate2", "threads": 1}
    train_rl(
        config(tiny_dir, tasks_file, tmp_path, algo="coderl", max_steps=1, backend=backend, tis_cap=2.0),
        progress=False,
    )
    (record,) = step_records(tmp_path)
    assert captured.syncs == 1 and {"coderl/baseline_reward", "loss/coderl/loss"} <= set(record)
    assert record["sample/tis_weight_mean"] == pytest.approx(1.0, abs=1e-3)


def test_sync_every_skips_steps(tiny_dir: Path, tasks_file: Path, tmp_path: Path, captured: Captured) -> None:
    backend = {"name": "ctranslate2", "threads": 1, "sync_every": 2}
    train_rl(config(tiny_dir, tasks_file, tmp_path, max_steps=1, backend=backend), progress=False)
    (record,) = step_records(tmp_path)
    assert captured.syncs == 0 and "time/sync" not in record and "sample/tis_weight_mean" not in record
    assert math.isfinite(record["sample/logp_gap"])


def test_hf_runs_request_no_engine_log_probs(tiny_dir: Path, tasks_file: Path, tmp_path: Path) -> None:
    train_rl(config(tiny_dir, tasks_file, tmp_path, max_steps=1), progress=False)
    (record,) = step_records(tmp_path)
    assert not any(k.startswith(("sample/logp", "sample/tis", "time/sync")) for k in record)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"algo": "falcon", "backend": {"name": "ctranslate2"}}, "backend: falcon samples with the trainer"),
        ({"algo": "falcon", "tis_cap": 2.0}, "tis_cap: falcon has no importance-sampling"),
        ({"tis_cap": 2.0}, "tis_cap corrects for an engine other than"),
        (
            {"tis_cap": 2.0, "backend": {"name": "ctranslate2"}, "sampling": {"temperature": 0.8}},
            "tis_cap with backend ctranslate2 needs sampling.temperature: 1",
        ),
        ({"tis_cap": 0.5, "backend": {"name": "ctranslate2"}}, "tis_cap"),
    ],
)
def test_unsupported_backend_settings_are_refused(
    extra: dict, message: str, tiny_dir: Path, tasks_file: Path, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=message):
        config(tiny_dir, tasks_file, tmp_path, **extra)


def test_checkpoints_older_than_the_backend_keys_resume(
    tiny_dir: Path, tasks_file: Path, tmp_path: Path
) -> None:
    current = config(tiny_dir, tasks_file, tmp_path)
    saved = current.model_dump(mode="json")
    del saved["backend"], saved["tis_cap"], saved["rft"]  # a checkpoint from before these keys existed
    del saved["grpo"]["oversample"]

    def free(config: TrainConfig) -> set[str]:
        return {
            *MAY_CHANGE_ON_RESUME,
            *newer_keys_at_default(saved, config.model_dump(mode="json"), ADDED_LATER),
        }

    assert config_changes(saved, current.model_dump(mode="json"), free(current)) == []
    other = config(tiny_dir, tasks_file, tmp_path, backend={"name": "ctranslate2"})
    changes = config_changes(saved, other.model_dump(mode="json"), free(other))
    assert [c.split(":")[0] for c in changes] == ["backend"]
    dynamic = config(tiny_dir, tasks_file, tmp_path, grpo={"mask_truncated": False, "oversample": 2.0})
    changes = config_changes(saved, dynamic.model_dump(mode="json"), free(dynamic))
    assert [c.split(":")[0] for c in changes] == ["grpo.oversample"]


def test_resume_check_frees_only_the_newer_keys_left_at_default(tmp_path: Path) -> None:
    from codefalcon.rl.checkpoint import Checkpoint
    from codefalcon.rl.run_dir import ConfigChangedError, check_resume_config
    from codefalcon.rl.sft import SFTConfig

    config = SFTConfig(model="m", train=[{"benchmark": "jsonl", "path": "t.jsonl"}])
    saved = config.model_dump(mode="json")
    checkpoint = Checkpoint(tmp_path, 1, {"config": {k: v for k, v in saved.items() if k != "lr"}})
    check_resume_config(checkpoint, config, set(), False, {"lr": saved["lr"]})  # lr newer, at default
    with pytest.raises(ConfigChangedError, match="lr"):
        check_resume_config(checkpoint, config, set(), False)  # not declared newer: a change
    changed = config.model_copy(update={"lr": saved["lr"] * 2})
    with pytest.raises(ConfigChangedError, match="lr"):
        check_resume_config(checkpoint, changed, set(), False, {"lr": saved["lr"]})  # newer, not default
