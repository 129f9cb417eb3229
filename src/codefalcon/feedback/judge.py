"""The AI judge: FALCON's rubric (coding style, complexity, instruction following) over any chat model.

A judge is a prompt, a chat back-end (any callable ``str -> str``: `OpenAIChat` for an
OpenAI-compatible endpoint, `PolicyChat` for a local model, or a function in tests) and a parser.
Each criterion is an integer in {-1, 0, 1, 2}. The reward is their mean mapped to [0, 1]:
``sum(score + 1) / 9``. An answer that does not parse, or a back-end that stays unavailable after
its retries (`JudgeUnavailable`), gives a *missing* reward (None), never -1: the judge's failure
says nothing about the program.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from codefalcon.feedback.record import Reward

log = logging.getLogger(__name__)

CRITERIA = ("coding_style", "complexity", "instruction_following")
SCORE_RANGE = range(-1, 3)
"""Allowed scores: -1 (bad), 0, 1, 2 (excellent)."""

# Names models use for the criteria, after lower-casing and turning spaces/hyphens into "_".
_ALIASES = {
    "coding_style": "coding_style",
    "style": "coding_style",
    "code_style": "coding_style",
    "complexity": "complexity",
    "instruction_following": "instruction_following",
    "instructions": "instruction_following",
    "following_instructions": "instruction_following",
}
_LINE = re.compile(
    r"(?:^|[,;])[\W_]*"
    r"(coding[ _-]?style|code[ _-]?style|style|complexity|instruction[ _-]?following|instructions)"
    r"[*_\s]*[:=][*_\s]*([+-]?\d+)\b",
    re.IGNORECASE | re.MULTILINE,
)

RUBRIC = """You are a strict reviewer of Python code. Rate the program below against the task on three \
criteria, each an integer from -1 to 2:
- coding_style: readability, naming, idiomatic Python and PEP 8. -1 poor, 0 acceptable, 1 good, 2 excellent.
- complexity: is it as simple and efficient as the task allows? -1 needlessly complex or slow, 2 minimal \
and efficient.
- instruction_following: does it do what the task asks, with the requested names, signature and input/output \
format? -1 ignores the task, 2 follows it exactly.
Judge only these criteria, not whether the program passes hidden tests.
Answer with only a JSON object: {{"coding_style": <int>, "complexity": <int>, "instruction_following": <int>}}

Task:
{task}

Program:
```python
{program}
```"""


class JudgeUnavailable(Exception):
    """The judge back-end failed in a way retrying did not fix (timeouts, 5xx, bad response body)."""


@dataclass(frozen=True)
class JudgeScores:
    """The three rubric scores, each in {-1, 0, 1, 2}."""

    coding_style: int
    complexity: int
    instruction_following: int

    @property
    def value(self) -> float:
        """The mean score mapped to [0, 1]: ``sum(score + 1) / 9``.

        >>> JudgeScores(2, 1, 0).value, JudgeScores(-1, -1, -1).value, JudgeScores(2, 2, 2).value
        (0.6666666666666666, 0.0, 1.0)
        """
        return sum(getattr(self, name) + 1 for name in CRITERIA) / (3 * (len(SCORE_RANGE) - 1))


@dataclass(frozen=True)
class Judgement:
    """One judged program: the scores (None if unparseable), the raw answer, and the reward."""

    scores: JudgeScores | None
    answer: str | None
    reward: Reward


def judge_prompt(task: str, program: str) -> str:
    """The rubric filled in with the task statement and the program."""
    return RUBRIC.format(task=task.strip(), program=program.rstrip())


def parse_judgement(answer: str) -> JudgeScores | None:
    """The three scores from a judge's answer, or None if any is absent or out of range.

    Accepts a JSON object (anywhere in the text, e.g. in a code fence) with the three keys, or
    ``name: score`` lines. Common spellings ("style", "instructions") are accepted.

    >>> parse_judgement('Sure! {"coding_style": 2, "complexity": 1, "instruction_following": 0}')
    JudgeScores(coding_style=2, complexity=1, instruction_following=0)
    >>> parse_judgement("Style: 1\\nComplexity: -1\\nInstruction following: 2")
    JudgeScores(coding_style=1, complexity=-1, instruction_following=2)
    >>> parse_judgement("style: 3, complexity: 1, instructions: 1") is None  # 3 is out of range
    True
    """
    for obj in _json_objects(answer):
        scores = _scores_from_mapping(obj)
        if scores is not None:
            return scores
    found: dict[str, Any] = {}
    for name, score in _LINE.findall(answer):
        found.setdefault(_canonical(name), score)
    return _scores_from_mapping(found)


def _json_objects(text: str) -> list[dict[str, Any]]:
    """Every JSON object that starts at some ``{`` in ``text`` (models wrap them in prose)."""
    decoder = json.JSONDecoder()
    objects = []
    for match in re.finditer(r"\{", text):
        try:
            obj, _ = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        if isinstance(obj, dict):
            objects.append(obj)
    return objects


def _canonical(name: str) -> str:
    return _ALIASES.get(re.sub(r"[\s-]+", "_", name.strip().lower()), name)


def _scores_from_mapping(raw: dict[str, Any]) -> JudgeScores | None:
    values = {}
    for key, value in raw.items():
        values.setdefault(_canonical(str(key)), value)
    scores = [_score(values.get(name)) for name in CRITERIA]
    if any(s is None for s in scores):
        return None
    return JudgeScores(*scores)


def _score(value: Any) -> int | None:
    """An allowed score from an int or an integer string; anything else is None (bools too)."""
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if value in SCORE_RANGE else None


def judge_reward(scores: JudgeScores | None, answer: str = "") -> Reward:
    """The judge's reward: ``scores.value``, or missing when the answer did not parse.

    >>> judge_reward(JudgeScores(2, 2, 1)).value
    0.8888888888888888
    >>> judge_reward(JudgeScores(2, 2, 1)).explanation
    'judge: coding_style 2, complexity 2, instruction_following 1'
    >>> judge_reward(None, "I like it").value is None
    True
    """
    if scores is None:
        return Reward(None, f"judge answer not understood: {answer[:200]!r}")
    parts = ", ".join(f"{name} {getattr(scores, name)}" for name in CRITERIA)
    return Reward(scores.value, f"judge: {parts}")


class AIJudge:
    """Judges programs with a chat back-end, several requests at a time.

    ``chat``: any callable from prompt text to answer text; it may raise `JudgeUnavailable`,
    which makes that program's reward missing. Other exceptions (a wrong URL, a bad key)
    propagate: they are configuration errors that retrying cannot fix. ``concurrency``: requests
    in flight at once (a thread pool per call, so nothing unpicklable is kept).
    """

    def __init__(self, chat: Callable[[str], str], concurrency: int = 4) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        self.chat = chat
        self.concurrency = concurrency

    def judge(self, task: str, program: str) -> Judgement:
        """Judge one program written for ``task`` (the statement shown to the policy)."""
        try:
            answer = self.chat(judge_prompt(task, program))
        except JudgeUnavailable as error:
            log.warning("AI judge unavailable: %s", error)
            return Judgement(None, None, Reward(None, f"judge unavailable: {error}"))
        scores = parse_judgement(answer)
        return Judgement(scores, answer, judge_reward(scores, answer))

    def judge_many(self, pairs: Sequence[tuple[str, str]]) -> list[Judgement]:
        """Judge every (task, program) pair; results in the order given."""
        if self.concurrency == 1 or len(pairs) <= 1:
            return [self.judge(task, program) for task, program in pairs]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(pairs))) as pool:
            return list(pool.map(lambda pair: self.judge(*pair), pairs))
