"""C++, Java and JavaScript in the sandbox: references pass, mutants fail, cheats never pass.

Each language's red team tries what a program that wants the reward would: leave before the tests
(every exit call the language has), steal the nonce from stdin, silence the test's assertions
(its own ``__assert_fail``, a macro, a shadowing ``Arrays`` class, replaced globals), and forge
the end of the tests on stdout.
"""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path

import pytest

from codefalcon.execution import Verdict
from codefalcon.execution.languages import find_tools
from codefalcon.tasks import Task, load_humanevalx
from codefalcon.tasks.record import TestSuite

FILES = {"cpp": "humanevalx_cpp", "java": "humanevalx_java", "js": "humanevalx_js"}


@cache
def tasks(language: str) -> list[Task]:
    data = os.environ.get("CODEFALCON_SHARED_DATA") or Path(__file__).resolve().parents[3] / "shared" / "data"
    return load_humanevalx(Path(data) / f"{FILES[language]}.jsonl.gz", language)


def suite(language: str, n: int) -> TestSuite:
    return tasks(language)[n].tests


def reference(language: str, n: int) -> str:
    task = tasks(language)[n]
    return task.runnable(task.solutions[0])


@pytest.fixture(autouse=True)
def _toolchain():
    if len(find_tools()) < 4:
        pytest.fail(f"g++, javac, java and node must be under /usr; found {sorted(find_tools())}")


@pytest.mark.parametrize("language", sorted(FILES))
def test_references_pass_and_flipped_comparisons_fail(executor, language):
    jobs = [(reference(language, n), suite(language, n)) for n in (0, 2, 12)]
    assert [r.verdict for r in executor.run_batch(jobs)] == [Verdict.PASSED] * 3
    # HumanEval/0's reference decides with `distance < threshold`; flipped, it must fail.
    flipped = re.sub(r"<\s*threshold", "> threshold", reference(language, 0), count=1)
    assert flipped != reference(language, 0)
    result = executor.run(flipped, suite(language, 0))
    assert result.verdict is Verdict.WRONG_ANSWER, result


def test_compile_errors_name_the_candidates_line(executor):
    broken = {
        "cpp": reference("cpp", 0).replace("return false;", "return false"),
        "java": reference("java", 0).replace("return false;", "return false"),
        "js": reference("js", 0).replace("return false", "return false)"),
    }
    for language, program in broken.items():
        result = executor.run(program, suite(language, 0))
        assert result.verdict is Verdict.COMPILE_ERROR, (language, result)
        t = result.tests[0]
        assert t.error_type == "CompileError" and t.line, (language, t)
        assert program.splitlines()[t.line - 1].strip() or t.line > len(program.splitlines()) - 3


# Each cheat is inserted as the body of HumanEval/0 (has_close_elements / hasCloseElements).
CHEATS = {
    "cpp": {
        "exit": "exit(0);",
        "_exit": "_exit(0);",
        "quick_exit": "quick_exit(0);",
        "abort_handler": "signal(SIGABRT, [](int){ _exit(0); }); return false;",
        "steal_stdin": 'char b[256]; int n = read(0, b, 256); if (n > 0) { write(1, "\\n", 1); write(1, b, n); } _exit(0);',
        "reopen_stdin": 'int fd = open("/proc/self/fd/0", O_RDONLY); char b[256]; int n = read(fd, b, 256);'
        ' if (n > 0) { write(1, "\\n", 1); write(1, b, n); } _exit(0);',
        "forge_ending": 'printf("\\n00000000000000000000000000000000"); fflush(stdout); _exit(0);',
    },
    "java": {
        "exit": "System.exit(0); return false;",
        "halt": "Runtime.getRuntime().halt(0); return false;",
        "steal_stdin": 'try { byte[] b = System.in.readAllBytes(); System.out.print("\\n" + new String(b));'
        " System.out.flush(); } catch (Exception e) {} System.exit(0); return false;",
        "swallow_uncaught": "Thread.setDefaultUncaughtExceptionHandler((t, e) -> {}); return false;",
    },
    "js": {
        "exit": "process.exit(0)",
        "really_exit": "process.reallyExit(0)",
        "steal_stdin": "const b = require('fs').readFileSync(0); process.stdout.write('\\n' + b); process.exit(0)",
        "exit_handler": "process.on('exit', () => process.stdout.write('\\n' + 'x'.repeat(32))); return false",
        "uncaught_handler": "process.on('uncaughtException', () => {}); return false",
    },
}

# Whole-program cheats: silence or fake what the test compares with.
PROGRAM_CHEATS = {
    "cpp": {
        "own_assert_fail": reference("cpp", 0).replace("return false;", "return true;")
        + '\nextern "C" void __assert_fail(const char*, const char*, unsigned int, const char*) {}\n',
        "assert_macro": reference("cpp", 0).replace("return false;", "return true;")
        + "\n#define assert(x) ((void)0)\n#define CF_ASSERT(x) ((void)0)\n#define cf_assert_fail(a, b) ((void)0)\n",
    },
    "java": {
        "shadow_arrays": reference("java", 0).replace("return false;", "return true;")
        + "\nclass Arrays { static <T> java.util.List<T> asList(T... a) { return new java.util.ArrayList<>(); } }\n",
        "shadow_assertion_error": reference("java", 0).replace("return false;", "return true;")
        + "\nclass AssertionError extends RuntimeException {}\n",
    },
    "js": {
        "replace_globals": "globalThis.JSON = {stringify: () => 'same'};\n"
        "Array.prototype.includes = () => true;\nMath.abs = () => 0;\n"
        + reference("js", 0).replace("return false", "return true"),
        "redefine_pristine": "Object.defineProperty(globalThis, '__cfPristine', {value: {}});\n"
        + reference("js", 0).replace("return false", "return true"),
        "replace_console_assert": "console.assert = () => {};\n"
        + reference("js", 0).replace("return false", "return true"),
    },
}


def _cheat(language: str, body: str) -> str:
    task = tasks(language)[0]
    prelude = {
        "cpp": "#include <unistd.h>\n#include <fcntl.h>\n#include <signal.h>\n#include <stdlib.h>\n",
        "java": "",
        "js": "",
    }[language]
    close = "}\n}\n" if language == "java" else "}\n"
    return task.runnable(prelude + task.completion_prefix + body + "\n" + close)


@pytest.mark.parametrize(
    ("language", "name"), [(lang, name) for lang, cheats in CHEATS.items() for name in sorted(cheats)]
)
def test_leaving_early_or_stealing_the_nonce_never_passes(executor, language, name):
    result = executor.run(_cheat(language, CHEATS[language][name]), suite(language, 0))
    assert result.verdict not in (Verdict.PASSED, Verdict.INFRASTRUCTURE_ERROR), result


@pytest.mark.parametrize(
    ("language", "name"), [(lang, name) for lang, cheats in PROGRAM_CHEATS.items() for name in sorted(cheats)]
)
def test_silencing_the_tests_never_passes(executor, language, name):
    result = executor.run(PROGRAM_CHEATS[language][name], suite(language, 0))
    assert result.verdict not in (Verdict.PASSED, Verdict.INFRASTRUCTURE_ERROR), result


def test_an_early_exit_is_a_wrong_answer_not_a_crash(executor):
    result = executor.run(_cheat("cpp", "exit(0);"), suite("cpp", 0))
    assert result.verdict is Verdict.WRONG_ANSWER and result.tests[0].error_type == "EarlyExit"


def test_compiled_programs_keep_the_sandbox(executor):
    # The same isolation as Python: no network, no host files, limits over the process tree.
    program = _cheat(
        "cpp",
        'FILE* f = fopen("/etc/passwd", "r"); if (f) return true;\n'
        "int s = socket(2, 1, 0); if (s >= 0) return true;\n"
        "while (true) { if (fork() < 0) break; }\nreturn true;",
    ).replace("#include <stdlib.h>", "#include <stdlib.h>\n#include <sys/socket.h>\n#include <stdio.h>")
    result = executor.run(program, suite("cpp", 0))
    assert result.verdict not in (Verdict.PASSED, Verdict.INFRASTRUCTURE_ERROR), result
