"""Every verdict, every test style, details of failures, and the batch API."""

from __future__ import annotations

from codefalcon.execution import Executor, ExecutorConfig, Verdict
from support import ADD_ASSERTS, ADD_CALLS, ADD_STDIO, assert_suite, call_suite, stdio_suite

ADD = "def add(a, b):\n    return a + b\n"
SUB = "def add(a, b):\n    return a - b\n"


def test_correct_program_passes_every_style(executor):
    stdio = "a, b = map(int, input().split())\nprint(a + b)\n"
    for program, suite in ((ADD, ADD_ASSERTS), (ADD, ADD_CALLS), (stdio, ADD_STDIO)):
        result = executor.run(program, suite)
        assert result.verdict is Verdict.PASSED, (suite.style, result)
        assert result.n_passed == 2 and result.coderl_code is True


def test_wrong_answer_reports_input_expected_actual(executor):
    result = executor.run(SUB, ADD_CALLS)
    assert result.verdict is Verdict.WRONG_ANSWER and result.coderl_code is False
    first = result.tests[0]
    assert (first.input, first.expected, first.actual) == ("[2, 3]", "5", "-1")
    asserted = executor.run(SUB, ADD_ASSERTS).tests[0]
    assert asserted.verdict is Verdict.WRONG_ANSWER
    assert asserted.input == "add(2, 3)" and asserted.actual == "-1"
    assert asserted.expected == "assert add(2, 3) == 5"
    printed = executor.run("print(int(input().split()[0]) * 2)", ADD_STDIO).tests[0]
    assert printed.verdict is Verdict.WRONG_ANSWER and printed.actual == "4\n"


def test_compile_error_has_line(executor):
    result = executor.run("def add(a, b)\n    return a + b\n", ADD_CALLS)
    assert result.verdict is Verdict.COMPILE_ERROR and result.coderl_code == -2
    assert result.tests[0].error_type == "SyntaxError" and result.tests[0].line == 1
    stdio = executor.run("print(1\n", ADD_STDIO)
    assert stdio.verdict is Verdict.COMPILE_ERROR


def test_runtime_error_has_type_message_and_line(executor):
    program = "def add(a, b):\n    x = 1\n    return [][a]\n"
    for suite in (ADD_CALLS, ADD_ASSERTS):
        t = executor.run(program, suite).tests[0]
        assert t.verdict is Verdict.RUNTIME_ERROR
        assert (t.error_type, t.line) == ("IndexError", 3)
        assert "out of range" in t.message
    t = executor.run("x = 1\nraise ValueError('bad input')\n", ADD_STDIO).tests[0]
    assert (t.verdict, t.error_type, t.message, t.line) == (
        Verdict.RUNTIME_ERROR,
        "ValueError",
        "bad input",
        2,
    )
    # An error at import time fails every test.
    loaded = executor.run("import nonexistent_module_xyz\n", ADD_CALLS)
    assert loaded.verdict is Verdict.RUNTIME_ERROR and loaded.tests[0].error_type == "ModuleNotFoundError"


def test_timeout_and_recovery(executor):
    loop = "def add(a, b):\n    while True:\n        pass\n"
    result = executor.run(loop, ADD_CALLS)
    assert [t.verdict for t in result.tests] == [Verdict.TIMEOUT, Verdict.TIMEOUT]
    assert result.coderl_code == -1
    # Only the hanging test times out: the host is restarted for the next one.
    flaky = "def add(a, b):\n    while a == 2:\n        pass\n    return a + b\n"
    verdicts = [t.verdict for t in executor.run(flaky, ADD_ASSERTS).tests]
    assert verdicts == [Verdict.TIMEOUT, Verdict.PASSED]
    slow_load = "while True:\n    pass\n"
    assert executor.run(slow_load, ADD_CALLS).verdict is Verdict.TIMEOUT
    assert executor.run(ADD, ADD_CALLS).passed


def test_memory_exceeded(executor):
    bomb = "def add(a, b):\n    x = bytearray(8 * 1024 ** 3)\n    return a + b\n"
    for suite in (ADD_CALLS, ADD_ASSERTS):
        assert executor.run(bomb, suite).verdict is Verdict.MEMORY_EXCEEDED
    stdio = "x = [0] * (2 ** 33)\n"
    assert executor.run(stdio, ADD_STDIO).verdict is Verdict.MEMORY_EXCEEDED


def test_stop_on_first_failure_runs_fewer_tests(executor):
    suite = call_suite(([1, 1], 3), ([2, 3], 5), ([0, 0], 0))
    full = executor.run(ADD, suite)
    short = executor.run(ADD, suite, stop_on_first_failure=True)
    assert [t.verdict for t in full.tests] == [Verdict.WRONG_ANSWER, Verdict.PASSED, Verdict.PASSED]
    assert len(short.tests) == 1 and short.n_tests == 3 and short.verdict is Verdict.WRONG_ANSWER
    assert full.pass_ratio == 2 / 3


def test_call_style_solution_class_and_apps_wrapping(executor):
    program = (
        "class Solution:\n    def twoSum(self, xs, t):\n        return (xs.index(t - xs[-1]), len(xs) - 1)\n"
    )
    suite = call_suite(([[2, 7], 9], [0, 1]), ([[3, 3], 6], [[0, 1]]), fn_name="twoSum")
    assert executor.run(program, suite).passed


def test_assert_style_with_setup_and_program_objects(executor):
    # MBPP 367-style: the setup builds objects from a class the program defines.
    program = (
        "class Node:\n    def __init__(self, v):\n        self.v, self.left = v, None\n"
        "def depth(n):\n    return 0 if n is None else 1 + depth(n.left)\n"
    )
    suite = assert_suite(
        "assert depth(root) == 2",
        "assert depth(root.left) == 1",
        fn_name="depth",
        setup="root = Node(1)\nroot.left = Node(2)\n",
    )
    assert executor.run(program, suite).passed
    # A lambda argument cannot cross the process boundary: the harness says so.
    limited = executor.run(
        "def add(f, x):\n    return f(x)\n", assert_suite("assert add(lambda v: v, 1) == 1")
    )
    assert limited.verdict is Verdict.INFRASTRUCTURE_ERROR and limited.coderl_code is None


def test_expected_exception_in_test_code(executor):
    program = "def add(a, b):\n    raise ValueError('no')\n"
    suite = assert_suite(
        "try:\n    add(1, 2)\n    raise AssertionError('no error')\nexcept ValueError:\n    pass\n"
    )
    assert executor.run(program, suite).passed


def test_stdio_float_and_lenient_comparators():
    program = "print(1 / 3)\n"
    suite = stdio_suite(("", "0.333333\n"))
    with Executor(ExecutorConfig(workers=1, cache_size=0)) as ex:
        assert ex.run(program, suite).verdict is Verdict.WRONG_ANSWER
    with Executor(ExecutorConfig(workers=1, cache_size=0, float_tol=1e-5)) as ex:
        assert ex.run(program, suite).passed
    with Executor(ExecutorConfig(workers=1, compare="apps")) as ex:
        assert ex.run("print(1)\nprint(2)\n", stdio_suite(("", "1 2"))).passed


def test_batch_keeps_order_and_cache_hits():
    jobs = [(ADD if i % 2 else SUB, ADD_CALLS) for i in range(10)]
    with Executor(ExecutorConfig(workers=2)) as ex:
        seen: list[int] = []
        results = ex.run_batch(jobs, progress=seen.append)
        assert [r.passed for r in results] == [bool(i % 2) for i in range(10)]
        assert sum(seen) == 10
        again = ex.run_batch(jobs[:2])
        assert all(r.cached for r in again) and [r.passed for r in again] == [False, True]


def test_protocol_stays_in_step_across_early_stops_and_load_failures(executor):
    # Every way a job can end early (load failure, first failure in a reward run, a timeout
    # mid-batch) must leave the worker ready for the next program, in one batch on few workers.
    many_calls = call_suite(*[([i, 1], i + 1) for i in range(6)])
    many_asserts = assert_suite(*[f"assert add({i}, 1) == {i + 1}" for i in range(6)])
    flaky = "def add(a, b):\n    while a == 2:\n        pass\n    return a + b\n"
    jobs = [
        ("def add(a, b)\n", many_calls),
        (SUB, many_calls),
        (SUB, many_asserts),
        ("raise ValueError\n", many_asserts),
        (flaky, many_calls),
        (ADD, many_calls),
        (ADD, many_asserts),
    ] * 2
    for stop in (True, False):
        results = executor.run_batch(jobs, stop_on_first_failure=stop)
        assert [r.passed for r in results] == [False] * 5 + [True] * 2 + [False] * 5 + [True] * 2
        assert all(r.verdict is not Verdict.INFRASTRUCTURE_ERROR for r in results)
        # The flaky program passes two tests, then times out on the third.
        assert [len(r.tests) for r in results[:5]] == ([1, 1, 1, 1, 3] if stop else [6] * 5)


def test_large_inputs_and_outputs_do_not_deadlock_the_pipes(executor):
    # More than a pipe's capacity both ways: requests and answers must interleave.
    big = "x" * 300_000
    suite = stdio_suite(*[(f"{big}{i}\n", f"{big}{i}\n") for i in range(4)])
    result = executor.run("print(input())\n", suite)
    assert result.passed, result.verdict
