"""PPO on code translation (Python -> C++) with PPOCoder's rewards: the smoke test of issue 16.

A tiny model whose tokenizer saw Python and C++ writes C++ for HumanEval-X translation tasks;
the sandbox compiles and tests each program, and the reward adds PPOCoder's compiler signal and
AST / data-flow match against the C++ reference to the unit tests.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import torch

from codefalcon.configs import load_config
from codefalcon.models import load_policy
from codefalcon.models.tiny import build_tiny_model, default_source_files
from codefalcon.rl.metrics_log import read_metrics
from codefalcon.rl.train import train_rl
from codefalcon.rl.train_config import TrainConfig


@pytest.mark.slow
def test_ppo_on_translation_logs_ppocoder_rewards_and_moves_weights(
    shared_data: Path, tmp_path: Path
) -> None:
    corpus = tmp_path / "cpp"
    corpus.mkdir()
    with gzip.open(shared_data / "humanevalx_cpp.jsonl.gz", "rt", encoding="utf-8") as f:
        for row in map(json.loads, f):
            n = row["task_id"].split("/")[1]
            (corpus / f"{n}.cpp").write_text(row["prompt"] + row["canonical_solution"] + row["test"])
    sources = [*default_source_files(300_000), *sorted(corpus.glob("*.cpp"))]
    model = build_tiny_model(
        tmp_path / "tiny", sources, vocab_size=2000, n_layer=2, n_embd=64, arch="llama"
    ).out_dir
    overrides = {
        "algo": "ppo",
        "model": str(model),
        "device": "cpu",
        "train": {
            "benchmark": "translate",
            "path": str(shared_data),
            "source": "python",
            "target": "cpp",
            "split": None,
            "limit": 2,
        },
        "eval": None,
        "out_dir": str(tmp_path / "run"),
        "max_steps": 2,
        "tasks_per_step": 2,
        "group_size": 2,
        "micro_batch_size": 4,
        "lr": 1e-3,
        "sampling": {"max_new_tokens": 16, "batch_size": 4},
        "reward": {
            "unit_tests": "binary",
            "static_weights": {"compiler": 1.0, "ast_match": 1.0, "dataflow_match": 1.0},
        },
        "tensorboard": False,
        "exec_workers": 1,
    }
    config = load_config(TrainConfig, None, [f"{k}={json.dumps(v)}" for k, v in overrides.items()])
    before = load_policy(model).model.state_dict()
    summary = train_rl(config, progress=False)
    assert summary["steps"] == 2 and summary["algo"] == "ppo"
    steps = [r for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if "reward/total" in r]
    assert [r["step"] for r in steps] == [1, 2]
    for record in steps:
        # Random 16-token C++ never compiles: the compiler part is its "does not compile" 0, and
        # the AST match is what the unfinished program shares with the reference (not zero).
        assert record["reward/compiler"] == 0.0
        assert 0.0 < record["reward/ast_match"] < 1.0
        assert record["verdict/compile_error"] == 1.0
        assert record["code/cpp/lines"] >= 1 and "code/cpp/ast_nodes" in record
    after = load_policy(tmp_path / "run" / "final").model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before), "no weight moved"
