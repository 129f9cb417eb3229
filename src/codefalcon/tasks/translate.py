"""Code translation tasks from HumanEval-X pairs: a program in one language, its tests in another.

The same problem number N exists in every HumanEval-X language, so any two languages give 164
translation tasks: the source language's reference program is shown, the target language's
signature is to be completed, and the target's own tests judge the result (PPOCoder's setting,
with unit tests instead of BLEU alone).

The source program goes into the ``completion_prefix`` as line comments of the target language.
A base model then sees it, a chat model sees it inside the code block it is asked to complete,
and the program ``prefix + completion`` still compiles: a line comment cannot be closed early by
anything in the source, as a ``/* */`` block could.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from codefalcon.tasks.humanevalx import load_humanevalx
from codefalcon.tasks.record import LANGUAGES, Task

LANGUAGE_NAMES = {"python": "Python", "cpp": "C++", "java": "Java", "js": "JavaScript"}
_LINE_COMMENT = {"python": "#", "cpp": "//", "java": "//", "js": "//"}


def humanevalx_file(folder: str | Path, language: str) -> Path:
    """``humanevalx_<language>.jsonl.gz`` (or ``.jsonl``) in ``folder``; FileNotFoundError if neither."""
    folder = Path(folder)
    for name in (f"humanevalx_{language}.jsonl.gz", f"humanevalx_{language}.jsonl"):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"no humanevalx_{language}.jsonl.gz (or .jsonl) in {folder}")


def load_translation(folder: str | Path, source: str, target: str) -> list[Task]:
    """Translation tasks ``source`` -> ``target`` from the HumanEval-X files in ``folder``."""
    for option, language in (("source", source), ("target", target)):
        if language not in LANGUAGES:
            raise ValueError(f"{option} language must be one of {', '.join(LANGUAGES)}, not {language!r}")
    if source == target:
        raise ValueError(f"source and target are both {source}: a translation needs two languages")
    source_tasks = load_humanevalx(humanevalx_file(folder, source), source)
    target_tasks = load_humanevalx(humanevalx_file(folder, target), target)
    return build_translation_tasks(source_tasks, target_tasks, source, target)


def build_translation_tasks(
    source_tasks: Sequence[Task], target_tasks: Sequence[Task], source: str, target: str
) -> list[Task]:
    """One task per problem number present in both lists, in the target list's order.

    The task: id ``translate/<source>-<target>/N``; prompt and ``completion_prefix`` = the source
    program as comments, then the target's signature (`code_head`); tests and example tests =
    the target's; ``solutions`` = the prefix + the target's reference body (so supervised
    targets are the body, as for HumanEval); metadata: both languages, ``source_program``,
    ``target_reference`` (the reference without the comments, for AST / data-flow match) and
    the target's ``program_prelude`` (C++ headers), if any.
    """
    by_number = {problem_number(task): task for task in source_tasks}
    tasks = []
    for goal in target_tasks:
        number = problem_number(goal)
        if number not in by_number:
            continue
        given = by_number[number]
        source_program = code_head(given, source) + reference_body(given)
        head = code_head(goal, target)
        prefix = comment_block(source_program, source, target) + head
        metadata = {
            "source_language": source,
            "target_language": target,
            "language": target,
            "source_task_id": given.task_id,
            "target_task_id": goal.task_id,
            "source_program": source_program,
            "target_reference": head + reference_body(goal),
        }
        if "program_prelude" in goal.metadata:
            metadata["program_prelude"] = goal.metadata["program_prelude"]
        tasks.append(
            replace(
                goal,
                task_id=f"translate/{source}-{target}/{number}",
                prompt=prefix,
                completion_prefix=prefix,
                solutions=(prefix + reference_body(goal),),
                source="translate",
                metadata=metadata,
            )
        )
    return tasks


def problem_number(task: Task) -> int:
    """N of a HumanEval-X id (``CPP/12`` -> 12)."""
    return int(task.task_id.rpartition("/")[2])


def reference_body(task: Task) -> str:
    """The reference solution after the prompt: HumanEval-X's ``canonical_solution``."""
    (solution, *_) = task.solutions
    if not solution.startswith(task.completion_prefix):
        raise ValueError(f"{task.task_id}: its reference does not continue its prompt")
    return solution[len(task.completion_prefix) :]


def code_head(task: Task, language: str) -> str:
    """The task's code before the body, without the problem description where possible.

    That is HumanEval-X's ``declaration`` (imports, helpers, signature), except for the four C++
    problems (10, 32, 38, 50) whose declaration does not end at the signature (38's holds half
    of a body): there it is the prompt, comments included.
    """
    declaration = str(task.metadata.get("declaration", ""))
    if not declaration.strip():
        return task.completion_prefix
    signature = declaration.rstrip().splitlines()[-1].strip()
    if language == "python" or task.completion_prefix.rstrip().endswith(signature):
        return declaration
    return task.completion_prefix


def comment_block(program: str, source: str, target: str) -> str:
    """``program`` as line comments of ``target``, under a one-line instruction.

    >>> print(comment_block("def f():\\n    return 1\\n", "python", "cpp"), end="")
    // Translate this Python program to C++:
    // def f():
    //     return 1
    //
    """
    mark = _LINE_COMMENT[target]
    lines = [f"Translate this {LANGUAGE_NAMES[source]} program to {LANGUAGE_NAMES[target]}:"]
    lines += program.rstrip("\n").splitlines()
    # The closing empty comment ends the block even if the last source line ends in a
    # backslash, which would continue a C++ line comment onto the next line.
    return "".join(f"{mark} {line}".rstrip() + "\n" for line in lines) + mark + "\n"
