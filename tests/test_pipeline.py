"""`codefalcon run`: every stage once, skipped when complete, and the same result after a kill."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import codefalcon.rl.train as train_module
from codefalcon.configs import ConfigError, load_config
from codefalcon.models import load_policy
from codefalcon.pipeline import DEFAULT_CONFIG, RunConfig, rl_gain, run_pipeline

SMALL = [
    "tiny={arch: gpt2, n_layer: 1, n_embd: 32, n_head: 2, n_positions: 256, vocab_size: 600}",
    "synth={n: 40, test_fraction: 0.2}",
    "eval_limit=4",
    "sft={max_steps: 4, micro_batch_size: 4, grad_accum: 1, warmup_steps: 1, save_every: 2, final_eval: false, lr: 3.0e-3}",
    "rl={algo: falcon, max_steps: 3, tasks_per_step: 2, group_size: 2, micro_batch_size: 4, save_every: 1,"
    " sampling: {max_new_tokens: 8, batch_size: 4}, eval_max_new_tokens: 8, tensorboard: false, exec_workers: 1}",
    "ablation={strategies: [sample, falcon], budget: 1, limit: 2, max_new_tokens: 8}",
]


def _config(out: Path) -> RunConfig:
    return load_config(RunConfig, DEFAULT_CONFIG, [f"out_dir={out}", *SMALL])


def test_the_embedded_default_validates() -> None:
    config = load_config(RunConfig, DEFAULT_CONFIG)
    assert config.rl_config(Path("runs/x"), "m").algo == "falcon"
    assert config.sft_config(Path("runs/x")).max_steps > 0
    # the default's warm-up learns from the printing references, its RL stage from the tests
    assert config.sft_config(Path("runs/x")).train[0].path == str(Path("runs/x/warmup.jsonl"))
    rl = config.rl_config(Path("runs/x"), "m")
    assert rl.train.path == str(Path("runs/x/tasks.jsonl")) and rl.reward.unit_tests == "pass_ratio"


def test_the_embedded_default_leaves_bf16_to_the_cpu_probe() -> None:
    config = load_config(RunConfig, DEFAULT_CONFIG)
    assert config.sft_config(Path("runs/x")).bf16_autocast == "auto"
    assert config.rl_config(Path("runs/x"), "m").bf16_autocast == "auto"
    forced = load_config(RunConfig, DEFAULT_CONFIG, ["sft.bf16_autocast=true", "rl.bf16_autocast=false"])
    assert forced.sft_config(Path("runs/x")).bf16_autocast is True
    assert forced.rl_config(Path("runs/x"), "m").bf16_autocast is False


def test_rl_gain_reads_the_before_and_after_results(tmp_path: Path) -> None:
    for name, passed in (("before", [True, False, False]), ("after", [True, True, False])):
        (tmp_path / name).mkdir()
        rows = [
            {
                "task_id": f"t{i}",
                "completion_id": 0,
                "passed": p,
                "verdict": "passed" if p else "wrong_answer",
            }
            for i, p in enumerate(passed)
        ]
        (tmp_path / name / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    gain = rl_gain(tmp_path)
    assert gain is not None and (gain.before, gain.after, gain.only_after) == (1 / 3, 2 / 3, 1)
    assert rl_gain(tmp_path / "missing") is None


def test_bad_section_keys_are_named() -> None:
    with pytest.raises(ConfigError, match="sft: unknown key 'max_stepz'"):
        load_config(RunConfig, DEFAULT_CONFIG, ["sft={max_stepz: 3}"])


def test_print_bug_gives_the_warm_up_its_own_references_and_rl_the_tests(tmp_path: Path) -> None:
    from codefalcon.pipeline import _synth
    from codefalcon.tasks.jsonl import load_tasks_jsonl

    config = load_config(RunConfig, DEFAULT_CONFIG, [f"out_dir={tmp_path}", "synth={n: 40, print_bug: 0.5}"])
    summary = _synth(config, tmp_path)
    tasks = {t.task_id: t for t in load_tasks_jsonl(tmp_path / "tasks.jsonl")}
    warmup = load_tasks_jsonl(tmp_path / "warmup.jsonl")
    assert {t.split for t in warmup} == {"train"} and len(warmup) == summary["n_train"]
    printed = [t for t in warmup if t.solutions != tasks[t.task_id].solutions]
    assert len(printed) == summary["warmup"]["print_bug"] == round(0.5 * len(warmup))
    assert all("print(" in t.solutions[0] and t.tests == tasks[t.task_id].tests for t in printed)
    assert config.sft_config(tmp_path).train[0].path == str(tmp_path / "warmup.jsonl")
    assert config.rl_config(tmp_path, "m").train.path == str(tmp_path / "tasks.jsonl")
    clean = load_config(RunConfig, DEFAULT_CONFIG, [f"out_dir={tmp_path}", "synth={n: 40}"])
    assert clean.sft_config(tmp_path).train[0].path == str(tmp_path / "tasks.jsonl")


@pytest.mark.slow
def test_run_all_stages_then_skip_them(tmp_path: Path) -> None:
    summary = run_pipeline(_config(tmp_path / "run"))
    run = tmp_path / "run"
    for stage in ("tasks", "model", "sft", "rl", "ablation"):
        assert (run / f"{stage}.done.json").is_file(), stage
    assert Path(summary["report"]).is_file()
    assert set(json.loads((run / "rl" / "ablation.json").read_text())["strategies"]) == {"sample", "falcon"}
    assert summary["rl_gain"]["n_tasks"] == 4  # eval_limit
    assert summary["rl_gain"]["before"] == summary["rl"]["pass@1_before"]
    assert summary["rl_gain"]["after"] == summary["rl"]["pass@1_after"]
    messages: list[str] = []
    again = run_pipeline(_config(run), say=messages.append)
    assert sum("skipped" in m for m in messages) == 5
    assert again["rl"] == summary["rl"]


@pytest.mark.slow
def test_a_killed_ablation_reruns_only_the_strategies_it_had_not_finished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    summary = run_pipeline(_config(run))
    (run / "ablation.done.json").unlink()  # as if killed after `sample`, inside `falcon`
    (run / "ablation" / "falcon.done.json").unlink()
    import codefalcon.inference as inference

    real, ran = inference.solve_main, []
    monkeypatch.setattr(
        inference, "solve_main", lambda options: ran.append(options["strategy"]) or real(options)
    )
    again = run_pipeline(_config(run))
    assert ran == ["falcon"]
    assert again["ablation"] == summary["ablation"]


@pytest.mark.slow
def test_killed_run_finishes_like_an_uninterrupted_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    straight = run_pipeline(_config(tmp_path / "straight"))
    real = train_module._train_step
    calls = {"n": 0}

    def dies_in_rl_step_2(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train_module, "_train_step", dies_in_rl_step_2)
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(_config(tmp_path / "killed"))
    monkeypatch.setattr(train_module, "_train_step", real)
    resumed = run_pipeline(_config(tmp_path / "killed"))
    assert resumed["rl"]["pass@1_after"] == straight["rl"]["pass@1_after"]
    assert resumed["ablation"]["strategies"] == straight["ablation"]["strategies"]
    a = load_policy(tmp_path / "straight" / "rl" / "final").model.state_dict()
    b = load_policy(tmp_path / "killed" / "rl" / "final").model.state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-6, rtol=0) for k in a)


def _wait_for(path: Path, process: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, f"the run ended before {path.name} was written"
        assert time.monotonic() < deadline, f"no {path.name} after {timeout} s"
        time.sleep(0.02)


@pytest.mark.slow
def test_kill_9_at_random_points_then_rerun_gives_the_same_result(tmp_path: Path) -> None:
    """Real SIGKILLs of `codefalcon run` at seeded random moments (inside any stage, between
    stages, while a checkpoint or report is being written), each followed by a rerun, end with the
    run an uninterrupted one produces: same RL result, same ablation, same final weights."""

    longer = [  # stages of a few seconds each, so random moments fall inside them
        o.replace("max_steps: 4,", "max_steps: 40,").replace("max_steps: 3,", "max_steps: 8,") for o in SMALL
    ]

    def command(out: Path) -> list[str]:
        return [sys.executable, "-m", "codefalcon.cli", "run", f"out_dir={out}", *longer]

    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    started = time.monotonic()
    straight = subprocess.run(
        command(tmp_path / "straight"), env=env, capture_output=True, text=True, timeout=900
    )
    assert straight.returncode == 0, straight.stderr[-2000:]
    whole = time.monotonic() - started
    out = tmp_path / "killed"
    rng = random.Random(0)
    kills: list[frozenset[str]] = []  # the stages complete when each kill landed
    # Each kill waits for a later stage to complete, then lands at a seeded random moment after it
    # (inside the next stage, between stages, while a checkpoint or report is written), so the
    # kills reach different stages however fast this CPU starts and runs each one.
    for attempt, milestone in enumerate(("model", "sft", "rl")):
        process = subprocess.Popen(
            command(out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _wait_for(out / f"{milestone}.done.json", process)
        try:  # the first kill 0.2 s into the warm-up: before it can complete on any CPU
            process.wait(timeout=0.2 if attempt == 0 else rng.uniform(0.0, 0.1) * whole)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait()
            kills.append(frozenset(p.name.split(".")[0] for p in out.glob("*.done.json")))
            continue
        assert process.returncode == 0
        break
    print("stages complete at each kill:", [sorted(k) for k in kills])
    assert len(set(kills)) >= 2, f"the kills must land in different stages to mean anything: {kills}"
    final = subprocess.run(command(out), env=env, capture_output=True, text=True, timeout=900)
    assert final.returncode == 0, final.stderr[-2000:]
    a = json.loads(straight.stdout.strip().splitlines()[-1])
    b = json.loads(final.stdout.strip().splitlines()[-1])
    assert b["rl"]["pass@1_after"] == a["rl"]["pass@1_after"]
    assert b["ablation"]["strategies"] == a["ablation"]["strategies"]
    wa = load_policy(tmp_path / "straight" / "rl" / "final").model.state_dict()
    wb = load_policy(out / "rl" / "final").model.state_dict()
    assert all(torch.allclose(wa[k], wb[k], atol=1e-6, rtol=0) for k in wa)
