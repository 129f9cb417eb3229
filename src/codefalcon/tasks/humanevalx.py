"""HumanEval-X (CodeGeeX; Zheng et al., 2023): the 164 HumanEval problems in C++, Java, JavaScript
and Python, each with its own hand-written tests.

Each line has ``task_id`` (``CPP/N``, ``Java/N``, ``JavaScript/N``, ``Python/N``; the same N is the
same problem in every language), ``prompt`` (doc comment and signature), ``declaration`` (the
signature without the doc comment), ``canonical_solution`` (the body, closing braces included),
``test`` (a whole test program: C++ ``main``, Java ``public class Main``, JavaScript calls to a
test function) and ``example_test`` (the same for the examples in the prompt; empty for six).

Programs are built as the official harness builds them (CodeGeeX
``codegeex/benchmark/humanevalx/evaluate_humaneval_x.py``, ``process_humaneval_test``):
``prompt + completion``, then ``"\\n" + test``. For C++ it also puts the standard headers that
the prompt does not include in front, since canonical solutions call ``sort`` or ``abs`` without
including ``<algorithm>``; here those headers are the task's ``program_prelude``, so a model's
whole program gets them too. Python rows are HumanEval's own and load as `load_humaneval` loads
them (``check(candidate)``), with the HumanEval-X ids.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from codefalcon.tasks.humaneval import humaneval_task
from codefalcon.tasks.reading import Where, get, iter_jsonl
from codefalcon.tasks.record import LANGUAGES, Task, TestCase, TestStyle, TestSuite

ID_PREFIXES = {"CPP": "cpp", "Java": "java", "JavaScript": "js", "Python": "python"}
"""HumanEval-X task-id prefix -> our language name (`LANGUAGES`)."""

CPP_HEADERS = (
    "#include<stdlib.h>",
    "#include<algorithm>",
    "#include<math.h>",
    "#include<stdio.h>",
    "#include<vector>",
    "#include<string>",
    "#include<climits>",
    "#include<cstring>",
    "#include<iostream>",
)
"""CodeGeeX's ``IMPORT_HELPER["cpp"]``: added in front of a C++ program unless its prompt has them."""

# The signature is the prompt's last line that declares a function (C++ prompts of 10, 32, 38
# and 50 end with a comment inside the function, so the last line is not always it).
_SIGNATURE = {
    "cpp": re.compile(r"^[^/*>\s].*?\b(\w+)\s*\("),
    "java": re.compile(r"^\s*(?:public|private|protected|static|\s)*[\w<>\[\], .?]+\s+(\w+)\s*\("),
    "js": re.compile(r"^\s*(?:const|let|var|function)\s+(\w+)"),
}
_PYTHON_CHECK_CALL = re.compile(r"^check\(\w+\)\s*$", re.M)


def load_humanevalx(path: str | Path, language: str | None = None) -> list[Task]:
    """The tasks of one HumanEval-X file (164 per language), all in the ``test`` split.

    ``language`` (``cpp``, ``java``, ``js`` or ``python``) is read from the task ids when not
    given; given, it must match them, so a C++ file loaded as Java is an error naming the file
    and line rather than 164 compile errors.
    """
    if language is not None and language not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}, not {language!r}")
    tasks = []
    for row, where in iter_jsonl(path):
        task_id = get(row, "task_id", str, where)
        found = ID_PREFIXES.get(task_id.partition("/")[0])
        if found is None:
            prefixes = ", ".join(f"{p}/N" for p in ID_PREFIXES)
            raise where.error("task_id", f"{task_id!r} is not a HumanEval-X id ({prefixes})")
        if language is None:
            language = found
        if found != language:
            problem = f"{task_id!r} is a {found} task, but this file is read as {language}"
            raise where.error("task_id", problem)
        tasks.append(_python_task(row, where) if language == "python" else braced_task(row, where, language))
    return tasks


def braced_task(row: dict[str, Any], where: Where, language: str) -> Task:
    """One C++, Java or JavaScript row as a `Task` whose tests are the row's test program."""
    prompt = get(row, "prompt", str, where)
    test = get(row, "test", str, where)
    example = get(row, "example_test", str, where, default="")
    solution = prompt + get(row, "canonical_solution", str, where)
    get(row, "declaration", str, where)  # checked: translation tasks start from it
    prelude = "".join(h + "\n" for h in CPP_HEADERS if h not in prompt) if language == "cpp" else ""
    metadata: dict[str, Any] = {"language": language, "declaration": row["declaration"]}
    if prelude:
        metadata["program_prelude"] = prelude + "\n"
    return Task(
        task_id=row["task_id"],
        prompt=prompt,
        tests=program_suite(test, language),
        source="humanevalx",
        entry_point=signature_name(prompt, language),
        completion_prefix=prompt,
        solutions=(solution,),
        example_tests=program_suite(example, language) if example.strip() else None,
        split="test",
        metadata=metadata,
    )


def program_suite(test: str, language: str) -> TestSuite:
    """A one-case ``program`` suite: the test program is appended to the program and run."""
    return TestSuite(TestStyle.PROGRAM, (TestCase(code=test),), language=language)


def signature_name(prompt: str, language: str) -> str | None:
    """The function the prompt declares: the name on its last signature line.

    >>> signature_name("/* doc */\\nconst addOne = (x) => {\\n", "js")
    'addOne'
    >>> signature_name("class Solution {\\n    public int addOne(int x) {\\n", "java")
    'addOne'
    """
    pattern = _SIGNATURE[language]
    for line in reversed(prompt.splitlines()):
        match = pattern.match(line)
        if match:
            return match.group(1)
    return None


def _python_task(row: dict[str, Any], where: Where) -> Task:
    """A Python row through the HumanEval loader.

    HumanEval-X's tests end with ``check(entry_point)``, which HumanEval's do not: the line is
    dropped, since the trusted setup would otherwise call ``check`` on the prompt's stub.
    """
    declaration = get(row, "declaration", str, where)
    names = re.findall(r"^def\s+(\w+)\s*\(", declaration, re.M)
    if not names:
        raise where.error("declaration", "no `def name(` in it, so the entry point is unknown")
    test = _PYTHON_CHECK_CALL.sub("", get(row, "test", str, where)).rstrip() + "\n"
    task = humaneval_task({**row, "test": test, "entry_point": names[-1]}, where, "humanevalx")
    example = _PYTHON_CHECK_CALL.sub("", get(row, "example_test", str, where, default="")).strip()
    if example:
        setup = task.prompt + "\n\n" + example + "\n"
        example_tests: TestSuite | None = replace(task.tests, setup=setup)
    else:
        example_tests = None
    metadata = {"language": "python", "declaration": declaration}
    return replace(task, example_tests=example_tests, metadata=metadata)
