"""PPOCoder's rewards: compiler signal, composition under the unit tests, TRL adapters."""

from __future__ import annotations

import dataclasses
import doctest
import itertools
import pickle
from collections.abc import Iterator

import pytest

from codefalcon.execution import Executor, ExecutorConfig, Verdict
from codefalcon.execution.languages import find_tools
from codefalcon.feedback import (
    PPOCODER_WEIGHTS,
    UNIT_TEST_RULES,
    CodeMatchReward,
    ComposedReward,
    PPOCoderReward,
    UnitTestReward,
    compiler_reward,
    ppocoder,
    ppocoder_components,
    ppocoder_reward,
    python_compiler_reward,
)
from codefalcon.tasks.record import TestCase, TestSuite
from codefalcon.tasks.record import TestStyle as Style  # a Test* name would be collected
from feedback.helpers import ADD_TASK, GOOD_BODY, WRONG_BODY, result
from feedback.programs import BROKEN, LANGUAGES, REFERENCE, RENAMED, UNRELATED, VARIANT

FAILING = [v for v in Verdict if v not in (Verdict.PASSED, Verdict.INFRASTRUCTURE_ERROR)]
CONFIG = ExecutorConfig(workers=1, timeout=20.0, load_timeout=20.0)
ADD_REFERENCE = ADD_TASK.completion_prefix + GOOD_BODY
TASK = dataclasses.replace(ADD_TASK, solutions=(ADD_REFERENCE,))


@pytest.fixture(scope="module")
def executor() -> Iterator[Executor]:
    with Executor(CONFIG) as ex:
        yield ex


def test_compiler_reward_from_verdicts() -> None:
    assert compiler_reward(Verdict.COMPILE_ERROR) == -1.0
    assert compiler_reward(result(Verdict.COMPILE_ERROR)) == -1.0  # an ExecutionResult works too
    for verdict in (Verdict.PASSED, Verdict.WRONG_ANSWER, Verdict.RUNTIME_ERROR, Verdict.TIMEOUT):
        assert compiler_reward(verdict) == 1.0  # it compiled, whatever happened next
    assert compiler_reward(Verdict.INFRASTRUCTURE_ERROR) is None  # the harness failed: unknown


def test_python_compiler_reward_from_text() -> None:
    assert python_compiler_reward(REFERENCE["python"]) == 1.0
    assert python_compiler_reward(BROKEN["python"]) == -1.0
    assert python_compiler_reward("return 1\n") == -1.0  # parses, but compile() rejects it
    assert python_compiler_reward("x = 1\0\n") == -1.0


PROGRAM_TESTS = {
    "python": None,
    "cpp": "#include <cassert>\nint main() { assert(add_all({1, 2}, 3) == 9); return 0; }\n",
    "java": "public class Main {\n  public static void main(String[] args) {\n"
    "    if (S.addAll(new int[] {1, 2}, 3) != 9) throw new AssertionError();\n  }\n}\n",
    "js": "const assert = require('node:assert');\nassert.deepEqual(addAll([1, 2], 3), 9);\n",
}


@pytest.mark.slow
@pytest.mark.parametrize("language", LANGUAGES)
def test_syntax_error_gives_compiler_minus_one_through_the_executor(executor, language: str) -> None:
    """The executor's verdict is the compiler signal: -1 for the broken program, +1 for the reference."""
    if language == "python":
        suite = TestSuite(Style.ASSERT, (TestCase(code="assert add_all([1, 2], 3) == 9"),), "add_all")
    else:
        tools = {"cpp": ("g++",), "java": ("javac", "java"), "js": ("node",)}[language]
        if not all(tool in find_tools() for tool in tools):
            pytest.skip(f"{language} needs {', '.join(tools)} under /usr")
        suite = TestSuite(Style.PROGRAM, (TestCase(code=PROGRAM_TESTS[language]),), language=language)
    prelude = "#include <vector>\n" if language == "cpp" else ""
    broken, good = executor.run_batch(
        [(prelude + BROKEN[language], suite), (prelude + REFERENCE[language], suite)]
    )
    assert broken.verdict is Verdict.COMPILE_ERROR and compiler_reward(broken) == -1.0
    assert good.verdict is Verdict.PASSED and compiler_reward(good) == 1.0


def test_components_and_total_hand_computed() -> None:
    # A wrong answer identical to the reference: compiler (1 + 1) / 2 = 1, AST 1, data flow 1;
    # binary: c = 0, f = 0, scale = 0.5 * (1 - 0); total = 0 + 0.5 * 1 = 0.5.
    ref = REFERENCE["python"]
    wrong = ppocoder_reward(result(Verdict.WRONG_ANSWER), ref, ref, "python")
    assert wrong.total == 0.5 and wrong.passed is False
    # A compile error: compiler 0; the matches of the broken text still count:
    # a = (0 + ast + dfg) / 3.
    parts = ppocoder_components(BROKEN["python"], ref, "python", result(Verdict.COMPILE_ERROR))
    assert parts["compiler"].value == 0.0 and parts["compiler"].explanation == "does not compile"
    broken = ppocoder_reward(result(Verdict.COMPILE_ERROR), BROKEN["python"], ref, "python")
    mean = (parts["ast_match"].value + parts["dataflow_match"].value) / 3
    assert broken.total == pytest.approx(0.5 * mean)
    # No reference: both matches missing, the weights renormalise onto the compiler signal.
    alone = ppocoder_reward(result(Verdict.PASSED, 2, 2), ref, None, "python")
    assert alone.total == 1.5 and alone.weights == {"compiler": 1.0}
    assert dict(PPOCODER_WEIGHTS) == {"compiler": 1.0, "ast_match": 1.0, "dataflow_match": 1.0}


@pytest.mark.parametrize("mode", list(UNIT_TEST_RULES))
@pytest.mark.parametrize("share", (0.0, 0.5, 0.999999))
def test_failing_never_outscores_passing(mode: str, share: float) -> None:
    """Real components, every language: the best failing program (a copy of the reference, one
    test short) stays strictly below the worst passing one (an unrelated program)."""
    rule = UNIT_TEST_RULES[mode]
    best_fail, worst_pass = float("-inf"), float("inf")
    for language, n_tests in itertools.product(LANGUAGES, (1, 2, 100)):
        ref = REFERENCE[language]
        candidates = (ref, RENAMED[language], VARIANT[language], UNRELATED[language], BROKEN[language])
        for program in candidates:
            passing = ppocoder_reward(result(Verdict.PASSED, n_tests, n_tests), program, ref, language,
                                      rule=rule, aux_share=share)  # fmt: skip
            worst_pass = min(worst_pass, passing.total)
            for verdict in FAILING:
                failing = ppocoder_reward(result(verdict, n_tests, n_tests - 1), program, ref, language,
                                          rule=rule, aux_share=share)  # fmt: skip
                best_fail = max(best_fail, failing.total)
    assert best_fail < worst_pass


def test_closer_to_the_reference_scores_higher_within_a_band() -> None:
    ref = REFERENCE["java"]
    scores = [
        ppocoder_reward(result(Verdict.WRONG_ANSWER), p, ref, "java").total for p in (ref, UNRELATED["java"])
    ]
    assert scores[0] > scores[1]


def test_ppocoder_trl_reward(executor) -> None:
    unit = UnitTestReward([TASK], "binary", executor=executor)
    reward = PPOCoderReward(unit)
    logged: dict[str, float] = {}
    broken = "    return (\n"
    totals = reward(["p"] * 3, [GOOD_BODY, WRONG_BODY, broken], task_id=["toy/add"] * 3,
                    log_metric=logged.__setitem__)  # fmt: skip
    # The good body is the reference itself: 1 + 0.5 * 1. The wrong one differs only in an
    # operator (anonymous in the AST, absent from data flow): 0 + 0.5 * 1.
    assert totals[0] == 1.5 and totals[1] == 0.5
    assert totals[2] < totals[1]  # a compile error loses the compiler signal
    assert logged["reward/compiler"] == pytest.approx(2 / 3)  # two of three compile
    assert logged["reward/passed"] == pytest.approx(1 / 3)
    breakdown = reward.breakdowns(["p"], [broken], task_id=["toy/add"])[0]
    assert breakdown.auxiliaries["compiler"].value == 0.0
    copy = pickle.loads(pickle.dumps(PPOCoderReward(UnitTestReward([TASK], "binary", CONFIG))))
    assert copy.__name__ == "ppocoder"


def test_code_match_rewards_as_trl_functions_and_auxiliaries(executor) -> None:
    ast = CodeMatchReward("ast_match", [TASK])
    assert ast.__name__ == "ast_match"
    assert ast(["p"], [GOOD_BODY], task_id=["toy/add"]) == [1.0]  # reference from the task
    flow = pickle.loads(pickle.dumps(CodeMatchReward("dataflow_match", language="cpp")))
    cpp = REFERENCE["cpp"]
    assert flow(["p", "p"], [RENAMED["cpp"], cpp], reference=[cpp, None]) == [1.0, None]  # column
    composed = ComposedReward(UnitTestReward([TASK], executor=executor), {"ast_match": ast})
    assert composed(["p"], [GOOD_BODY], task_id=["toy/add"]) == [1.5]
    with pytest.raises(ValueError, match="metric must be"):
        CodeMatchReward("bleu")


def test_docstring_examples() -> None:
    assert doctest.testmod(ppocoder, verbose=False).failed == 0
