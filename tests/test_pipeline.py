"""`codefalcon run`: every stage once, skipped when complete, and the same result after a kill."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import codefalcon.rl.train as train_module
from codefalcon.configs import ConfigError, load_config
from codefalcon.models import load_policy
from codefalcon.pipeline import DEFAULT_CONFIG, RunConfig, run_pipeline

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


def test_bad_section_keys_are_named() -> None:
    with pytest.raises(ConfigError, match="sft: unknown key 'max_stepz'"):
        load_config(RunConfig, DEFAULT_CONFIG, ["sft={max_stepz: 3}"])


@pytest.mark.slow
def test_run_all_stages_then_skip_them(tmp_path: Path) -> None:
    summary = run_pipeline(_config(tmp_path / "run"))
    run = tmp_path / "run"
    for stage in ("tasks", "model", "sft", "rl", "ablation"):
        assert (run / f"{stage}.done.json").is_file(), stage
    assert Path(summary["report"]).is_file()
    assert set(json.loads((run / "rl" / "ablation.json").read_text())["strategies"]) == {"sample", "falcon"}
    messages: list[str] = []
    again = run_pipeline(_config(run), say=messages.append)
    assert sum("skipped" in m for m in messages) == 5
    assert again["rl"] == summary["rl"]


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
