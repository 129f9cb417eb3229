"""The reward `codefalcon train` gives: `RewardScorer` built from TrainConfig's reward section,
picklable (workers), with the AI judge as one of its components."""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass

import pytest

from codefalcon.configs import ConfigError, load_config
from codefalcon.execution import ExecutionResult, TestResult, Verdict
from codefalcon.feedback import AIJudge, JudgeUnavailable, OpenAIChat, RewardScorer
from codefalcon.rl.train_config import TrainConfig
from codefalcon.tasks.synth import generate_splits

PASSED = ExecutionResult(Verdict.PASSED, (TestResult(0, Verdict.PASSED),), n_tests=1)
FAILED = ExecutionResult(Verdict.WRONG_ANSWER, (TestResult(0, Verdict.WRONG_ANSWER),), n_tests=1)
PROGRAM = "def add(a, b):\n    return a + b\n"


@dataclass(frozen=True)
class RubricChat:
    """A judge back-end that always gives the same scores (module-level, so it pickles)."""

    answer: str

    def __call__(self, prompt: str) -> str:
        return self.answer


class DownChat:
    def __call__(self, prompt: str) -> str:
        raise JudgeUnavailable("503 after 3 retries")


def _config(**reward) -> TrainConfig:
    overrides = {"model": "m", "train": {"benchmark": "jsonl", "path": "t.jsonl"}, "reward": reward}
    return load_config(TrainConfig, None, [f"{k}={json.dumps(v)}" for k, v in overrides.items()])


def test_the_scorer_pickles_and_scores_the_same_after() -> None:
    task = generate_splits(1, 1, seed=3)[0][0]
    judge = AIJudge(RubricChat('{"coding_style": 2, "complexity": 1, "instruction_following": 2}'), 2)
    scorer = RewardScorer("pass_ratio", {"complexity": 1.0, "judge": 2.0}, 0.4, judge)
    copy = pickle.loads(pickle.dumps(scorer))
    assert copy.unit_tests == "pass_ratio" and copy.weights == scorer.weights and copy.aux_share == 0.4
    assert copy.runs_all_tests
    want = scorer([task, task], [PROGRAM, PROGRAM], [PASSED, FAILED])
    got = copy([task, task], [PROGRAM, PROGRAM], [PASSED, FAILED])
    assert [b.total for b in got] == [b.total for b in want]
    assert [b.metrics() for b in got] == [b.metrics() for b in want]


def test_the_judge_is_one_weighted_component_and_its_failure_is_missing() -> None:
    task = generate_splits(1, 1, seed=3)[0][0]
    asked: list[str] = []

    def chat(prompt: str) -> str:
        asked.append(prompt)
        return '{"coding_style": 2, "complexity": 2, "instruction_following": 2}'

    scored = RewardScorer("binary", {"judge": 1.0}, 0.5, AIJudge(chat, 1))([task], [PROGRAM], [PASSED])[0]
    # rubric all 2 -> judge 1.0; total = 1 + aux_share 0.5 x gap (1 - 0) x 1.0
    assert scored.metrics() == {
        "reward/judge": 1.0,
        "reward/correctness": 1.0,
        "reward/total": 1.5,
        "reward/passed": 1.0,
    }
    assert task.prompt.strip() in asked[0] and PROGRAM.strip() in asked[0]
    down = RewardScorer("binary", {"judge": 1.0}, 0.5, AIJudge(DownChat(), 1))([task], [PROGRAM], [FAILED])[0]
    assert down.auxiliaries["judge"].value is None and down.total == 0.0  # missing, not 0 or -1


def test_train_config_selects_the_judge_through_an_endpoint() -> None:
    config = _config(
        unit_tests="coderl",
        static_weights={"complexity": 1.0},
        judge={"model": "qwen2.5-coder", "base_url": "http://127.0.0.1:8000/v1", "weight": 2.0},
    )
    scorer = config.reward.build_scorer()
    assert scorer.weights == {"complexity": 1.0, "judge": 2.0} and scorer.unit_tests == "coderl"
    assert isinstance(scorer.judge, AIJudge) and isinstance(scorer.judge.chat, OpenAIChat)
    assert scorer.judge.chat.config.base_url == "http://127.0.0.1:8000/v1"
    assert pickle.loads(pickle.dumps(scorer)).judge.chat.config.model == "qwen2.5-coder"
    plain = _config().reward.build_scorer()
    assert plain == RewardScorer() and plain.judge is None
    with pytest.raises(ConfigError, match="base_url"):
        _config(judge={"model": "m", "base_url": "127.0.0.1:8000"})


def test_the_scorer_refuses_what_it_cannot_compute() -> None:
    with pytest.raises(ValueError, match="unknown reward components"):
        RewardScorer("binary", {"style": 1.0})
    with pytest.raises(ValueError, match="judge weight needs a judge"):
        RewardScorer("binary", {"judge": 1.0})
    with pytest.raises(ValueError, match="unknown unit-test reward"):
        RewardScorer("exact")
