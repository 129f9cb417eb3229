"""TRL adapters: the reward-function convention, task lookup, pickling, and the shared executor."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from collections.abc import Iterator

import pytest

from codefalcon.execution import Executor, ExecutorConfig
from codefalcon.feedback import (
    AIJudge,
    ComposedReward,
    JudgeReward,
    StaticReward,
    UnitTestReward,
    completion_text,
    complexity_reward,
    program_from_completion,
    prompt_text,
    ruff_reward,
)
from codefalcon.tasks import Task
from codefalcon.tasks.jsonl import task_to_dict
from feedback.helpers import ADD_TASK, GOOD_BODY, WRONG_BODY
from support import assert_suite

CONFIG = ExecutorConfig(workers=1, timeout=2.0, load_timeout=3.0)
# Passes the first test only (add(2, 3) == 5; candidate(-1, 1) == 0 fails).
HALF_BODY = "    return 5\n"
HALF_TASK = Task("toy/half", ADD_TASK.prompt, assert_suite("assert add(2, 3) == 5", "assert add(-1, 1) == 0"),
                 entry_point="add", completion_prefix=ADD_TASK.completion_prefix)  # fmt: skip
TASKS = [ADD_TASK, HALF_TASK]
TRL_EXTRAS = {"completion_ids": [[1], [2]], "trainer_state": object(), "log_extra": lambda *a: None}


@pytest.fixture(scope="module")
def executor() -> Iterator[Executor]:
    with Executor(CONFIG) as ex:
        yield ex


def test_completion_and_prompt_text_accept_messages() -> None:
    messages = [
        {"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
    ]
    assert completion_text(messages) == "ab" and completion_text("plain") == "plain"
    chat = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "Add."}]
    assert prompt_text(chat) == "Add." and prompt_text("Add.") == "Add."


def test_program_from_completion_prefers_the_entry_point_block() -> None:
    text = "```python\nimport math\n```\nthen\n```python\ndef add(a, b):\n    return a + b\n```"
    assert program_from_completion(ADD_TASK, text) == "def add(a, b):\n    return a + b\n"
    assert program_from_completion(ADD_TASK, GOOD_BODY) == ADD_TASK.completion_prefix + GOOD_BODY


def test_binary_with_string_and_message_completions(executor) -> None:
    reward = UnitTestReward(TASKS, "binary", executor=executor)
    fenced = [{"role": "assistant", "content": "```python\ndef add(a, b):\n    return a + b\n```"}]
    got = reward(["p"] * 3, [GOOD_BODY, WRONG_BODY, fenced], task_id=["toy/add"] * 3, **TRL_EXTRAS)
    assert got == [1.0, 0.0, 1.0]
    assert reward.__name__ == "unit_tests_binary"


def test_modes_and_explanations(executor) -> None:
    completions = [GOOD_BODY, HALF_BODY, "    return (\n", "    return 1 // 0\n"]
    ids = ["toy/half"] * 4
    coderl = UnitTestReward(TASKS, "coderl", executor=executor)
    assert coderl(["p"] * 4, completions, task_id=ids) == [1.0, -0.3, -1.0, -0.6]
    ratio = UnitTestReward(TASKS, "pass_ratio", executor=executor).rewards(
        ["p"] * 4, completions, task_id=ids
    )
    # pass_ratio runs every test: HALF passes test 0, fails test 1.
    assert [r.value for r in ratio] == [1.0, 0.5, 0.0, 0.0]
    assert ratio[1].explanation == "wrong_answer on test 1: AssertionError (passed 1/2 tests)"


def test_task_column_in_jsonl_format(executor) -> None:
    reward = UnitTestReward(executor=executor)
    rows = [json.dumps(task_to_dict(ADD_TASK)), task_to_dict(ADD_TASK)]  # string or dict
    assert reward(["p", "p"], [GOOD_BODY, WRONG_BODY], task=rows) == [1.0, 0.0]


def test_rows_without_tests_are_missing(executor) -> None:
    empty = Task("toy/empty", "x", assert_suite())
    assert UnitTestReward(executor=executor)(["p"], [GOOD_BODY]) == [None]
    assert UnitTestReward([empty], executor=executor)(["p"], [GOOD_BODY], task_id=["toy/empty"]) == [None]


def test_unknown_task_id_and_missing_column_are_errors(executor) -> None:
    reward = UnitTestReward(TASKS, executor=executor)
    with pytest.raises(ValueError, match="unknown task id 'nope'"):
        reward(["p"], [GOOD_BODY], task_id=["nope"])
    with pytest.raises(ValueError, match="no 'task_id' column"):
        reward(["p"], [GOOD_BODY])


def test_pickled_reward_starts_its_own_executor() -> None:
    reward = UnitTestReward(TASKS, "binary", CONFIG)
    assert reward(["p"], [GOOD_BODY], task_id=["toy/add"]) == [1.0]  # executor started lazily
    copy = pickle.loads(pickle.dumps(reward))
    assert copy._executor is None  # not pickled: worker processes cannot travel
    assert copy(["p"], [WRONG_BODY], task_id=["toy/add"]) == [0.0]
    assert copy._executor is not None and copy._executor is not reward._executor
    copy.executor().close()
    reward.executor().close()


def test_static_rewards_as_trl_functions() -> None:
    ruff = pickle.loads(pickle.dumps(StaticReward(ruff_reward)))
    assert ruff.__name__ == "ruff"
    assert ruff(["p", "p"], ["x = 1\n", "import os\n"], **TRL_EXTRAS) == [1.0, 1 / 11]
    complexity = StaticReward(complexity_reward, TASKS)
    assert complexity(["p"], [GOOD_BODY], task_id=["toy/add"]) == [1.0]  # prefix + body parses
    assert complexity(["p"], ["    return (\n"], task_id=["toy/add"]) == [0.0]


class FixedChat:
    """A picklable fake judge back-end that always answers the same."""

    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.prompts: list[str] = []

    def __call__(self, prompt: str) -> str:
        self.prompts.append(prompt)
        return self.answer


def test_judge_reward_uses_the_prompt_column_without_tasks() -> None:
    chat = FixedChat('{"coding_style": 2, "complexity": 2, "instruction_following": 2}')
    reward = JudgeReward(AIJudge(chat, concurrency=1))
    prompt = [{"role": "user", "content": "Write add(a, b)."}]
    assert reward([prompt], [[{"role": "assistant", "content": "def add(a, b): return a+b"}]]) == [1.0]
    assert "Write add(a, b)." in chat.prompts[0]
    assert pickle.loads(pickle.dumps(reward))(["p"], ["x"]) == [1.0]


def test_composed_reward_orders_pass_above_fail_and_logs_components(executor) -> None:
    chat = FixedChat("no idea")  # judge always missing: excluded, weights renormalised
    composed = ComposedReward(
        UnitTestReward(TASKS, "binary", executor=executor),
        {"ruff": StaticReward(ruff_reward, TASKS), "judge": JudgeReward(AIJudge(chat), TASKS)},
        weights={"ruff": 1.0, "judge": 1.0},
        aux_share=0.5,
    )
    logged: dict[str, float] = {}
    messy_pass = "    import os\n    return a + b\n"
    totals = composed(["p"] * 3, [GOOD_BODY, WRONG_BODY, messy_pass], task_id=["toy/add"] * 3,
                      log_metric=logged.__setitem__)  # fmt: skip
    # Clean pass: 1 + 0.5 * 1.0; clean failure: 0 + 0.5 * 1.0; messy pass below clean pass, above failures.
    assert totals[0] == 1.5 and totals[1] == 0.5
    assert 1.0 <= totals[2] < totals[0]
    assert logged["reward/passed"] == pytest.approx(2 / 3) and "reward/judge" not in logged
    breakdown = composed.breakdowns(["p"], [GOOD_BODY], task_id=["toy/add"])[0]
    assert breakdown.weights == {"ruff": 1.0} and breakdown.auxiliaries["judge"].value is None
    assert pickle.loads(pickle.dumps(composed)).__name__ == "composed"


def test_package_import_does_not_load_models_or_torch() -> None:
    code = "import sys, codefalcon.feedback; print([m for m in sys.modules if m == 'torch' or m.startswith('codefalcon.models')])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
