"""AI judge: parsing answers, missing rewards, and the concurrent judge over a fake chat."""

from __future__ import annotations

import pickle

import pytest

from codefalcon.feedback import (
    AIJudge,
    JudgeScores,
    JudgeUnavailable,
    judge_prompt,
    judge_reward,
    parse_judgement,
)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ('{"coding_style": 2, "complexity": 1, "instruction_following": 0}', (2, 1, 0)),
        ('```json\n{"style": -1, "complexity": "2", "instructions": 1}\n```', (-1, 2, 1)),
        ('Review: good. {"Coding Style": 1, "Complexity": 1, "Instruction Following": 2} Thanks', (1, 1, 2)),
        ("Coding style: 2\nComplexity: 0\nInstruction following: -1", (2, 0, -1)),
        ("**Style**: 1\n- **Complexity** = 2\n- instruction-following: 2", (1, 2, 2)),
        ("style: 2, complexity: 1; instructions: 0", (2, 1, 0)),
        ('{"note": "x"} then {"coding_style": 0, "complexity": 0, "instruction_following": 0}', (0, 0, 0)),
    ],
)
def test_parse_accepts_json_and_lines(answer: str, expected: tuple[int, int, int]) -> None:
    assert parse_judgement(answer) == JudgeScores(*expected)


@pytest.mark.parametrize(
    "answer",
    [
        "",
        "Looks great to me!",
        '{"coding_style": 2, "complexity": 1}',  # a criterion missing
        '{"coding_style": 3, "complexity": 1, "instruction_following": 1}',  # out of range
        '{"coding_style": true, "complexity": 1, "instruction_following": 1}',  # bool is not a score
        '{"coding_style": 1.5, "complexity": 1, "instruction_following": 1}',
        "style: 2\ncomplexity: 1",
        "style: high\ncomplexity: 1\ninstructions: 1",
    ],
)
def test_unparseable_answers_are_missing_not_minus_one(answer: str) -> None:
    assert parse_judgement(answer) is None
    assert judge_reward(None, answer).value is None


def test_value_maps_scores_to_unit_interval() -> None:
    # sum(s + 1) / 9: (2, 1, 0) -> (3 + 2 + 1) / 9.
    assert JudgeScores(2, 1, 0).value == pytest.approx(6 / 9, abs=1e-12)
    assert JudgeScores(-1, -1, -1).value == 0.0 and JudgeScores(2, 2, 2).value == 1.0


def test_prompt_contains_task_program_and_rubric() -> None:
    prompt = judge_prompt("Add two numbers.", "def add(a, b):\n    return a + b\n")
    assert "Add two numbers." in prompt and "return a + b\n```" in prompt
    assert '"instruction_following": <int>' in prompt


class ScriptedChat:
    """A picklable fake back-end answering from a script (keyed by program text)."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers

    def __call__(self, prompt: str) -> str:
        for key, answer in self.answers.items():
            if key in prompt:
                if answer == "UNAVAILABLE":
                    raise JudgeUnavailable("server down")
                return answer
        raise AssertionError("unexpected prompt")


def test_judge_many_keeps_order_and_marks_failures_missing() -> None:
    chat = ScriptedChat(
        {
            "good()": '{"coding_style": 2, "complexity": 2, "instruction_following": 2}',
            "rambling()": "I cannot rate this.",
            "down()": "UNAVAILABLE",
        }
    )
    judge = AIJudge(chat, concurrency=3)
    pairs = [("t", "good()"), ("t", "rambling()"), ("t", "down()"), ("t", "good()")]
    got = judge.judge_many(pairs)
    assert [j.reward.value for j in got] == [1.0, None, None, 1.0]
    assert got[1].answer == "I cannot rate this." and got[1].scores is None
    assert got[2].answer is None and "judge unavailable: server down" in got[2].reward.explanation
    assert pickle.loads(pickle.dumps(judge)).judge("t", "good()").reward.value == 1.0


def test_configuration_errors_propagate() -> None:
    def broken(prompt: str) -> str:
        raise RuntimeError("HTTP 401")

    with pytest.raises(RuntimeError, match="401"):
        AIJudge(broken).judge("t", "p")
