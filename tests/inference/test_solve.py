"""The critic adapter, the solve files, and the real tiny model end to end (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from codefalcon.critic import Critic
from codefalcon.evaluation import read_samples
from codefalcon.execution import Executor, ExecutorConfig
from codefalcon.inference import (
    CriticScorer,
    Prompter,
    SolveConfig,
    Strategy,
    best_prefix,
    solve,
    solve_main,
)
from codefalcon.memory import Attempt, HashingEmbedder, LongTermMemory
from codefalcon.models import PromptFormat
from codefalcon.tasks.jsonl import save_tasks_jsonl
from codefalcon.tasks.synth import generate_splits
from inference.fakes import RIGHT, WRONG, ScriptedBackend, add_task


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The tiny models are faster on one thread on this shared machine; restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def executor():
    with Executor(ExecutorConfig(workers=1, timeout=5.0)) as ex:
        yield ex


def test_best_prefix_never_takes_the_last_line_and_prefers_the_shorter_tie():
    assert best_prefix("a\nb\nc", [0.5, 0.5, 0.9]) == "a\n"
    assert best_prefix("a\nb", [0.1, 0.9]) == "a\n"
    assert best_prefix("only line\n", [1.0]) == "" == best_prefix("a\nb\n", [])


def test_critic_scorer_gives_one_prefix_score_per_line(tiny_dir: Path):
    critic = Critic.from_backbone(tiny_dir, binary=True, max_problem_tokens=64, max_program_tokens=128)
    scorer = CriticScorer(critic)
    task = add_task()
    program = task.completion_prefix + "    x = a + b\n    return x\n"
    lines = scorer.prefix_scores(task, program)
    assert len(lines) == 4 and all(0.0 <= p <= 1.0 for p in lines)
    # the last line's score is the critic's score after the program's last token
    tokens = critic.pass_scores([task.prompt], [program])
    assert lines[-1] == pytest.approx(float(tokens.probs[0, len(tokens.program_ids[0]) - 1]), abs=1e-6)
    (whole,) = scorer.score(task, [program])
    assert 0.0 <= whole <= 1.0


def test_solve_writes_ranked_samples_results_and_summary(tmp_path: Path, executor):
    config = SolveConfig(
        model="unused", benchmark="jsonl", out=tmp_path / "s.jsonl", strategy="repair", budget=2
    )
    backend = ScriptedBackend(lambda prompt, j: RIGHT if "got: -1" in prompt else WRONG)
    tasks = [add_task()]
    summary = solve(config, tasks, backend, Prompter(PromptFormat.COMPLETION), executor)
    assert summary["pass@1"] == 1.0 and summary["generations"] == 2
    lines = [json.loads(x) for x in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert [(x["rank"], x["origin"]) for x in lines] == [(0, "repair"), (1, "sample")]
    samples = read_samples(tmp_path / "s.jsonl", {t.task_id: t for t in tasks})
    assert samples[0].program.endswith(RIGHT)  # the first sample of a task is the pick
    results = [json.loads(x) for x in (tmp_path / "s_results.jsonl").read_text().splitlines()]
    assert [r["passed"] for r in results] == [True, False]
    saved = json.loads((tmp_path / "s_summary.json").read_text())
    assert saved["strategy"] == "repair" and saved["n_at_k"]["1@2"]["value"] == 1.0


def test_falcon_needs_a_memory_store(tmp_path: Path):
    with pytest.raises(ValueError, match="needs memory"):
        SolveConfig(model="m", benchmark="jsonl", out=tmp_path / "s.jsonl", strategy="falcon")


@pytest.mark.slow
def test_every_strategy_runs_the_tiny_model_end_to_end(tiny_dir: Path, tmp_path: Path):
    train, test = generate_splits(6, 2, seed=0)
    data = tmp_path / "tasks.jsonl"
    save_tasks_jsonl(train + test, data)
    store = tmp_path / "mem.db"
    with LongTermMemory(store, HashingEmbedder()) as memory:
        memory.add(
            [Attempt(t.task_id, t.prompt, "train", "", t.solutions[0], "passed", ["passed"]) for t in train]
        )
    for strategy in Strategy:
        out = tmp_path / f"{strategy.value}.jsonl"
        summary = solve_main(
            {"model": str(tiny_dir), "benchmark": "jsonl", "data": str(data), "split": "test", "out": str(out),
             "strategy": strategy.value, "budget": 2, "rounds": 1, "max_new_tokens": 24, "workers": 1,
             "memory": str(store) if strategy is Strategy.FALCON else None}
        )  # fmt: skip
        assert summary["n_tasks"] == 2 and 2 <= summary["generations"] <= 4
        assert summary["pass@1"] is not None and Path(summary["files"]["results"]).is_file()
        assert len(out.read_text().splitlines()) == summary["generations"]
