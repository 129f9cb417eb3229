"""Tasks: the `Task` record and loaders for benchmarks and generated problems."""

from codefalcon.tasks.apps import load_apps
from codefalcon.tasks.apps_examples import load_apps_example_tests
from codefalcon.tasks.errors import TaskFormatError
from codefalcon.tasks.evalplus import load_humaneval_plus, load_mbpp_plus
from codefalcon.tasks.humaneval import load_humaneval
from codefalcon.tasks.humanevalx import load_humanevalx
from codefalcon.tasks.jsonl import load_tasks_jsonl, save_tasks_jsonl
from codefalcon.tasks.mbpp import load_mbpp, load_mbpp_sanitized
from codefalcon.tasks.record import Task, TestCase, TestStyle, TestSuite
from codefalcon.tasks.registry import load_benchmark, normalize_task_id
from codefalcon.tasks.translate import build_translation_tasks, load_translation

__all__ = [
    "Task",
    "TaskFormatError",
    "TestCase",
    "TestStyle",
    "TestSuite",
    "build_translation_tasks",
    "load_apps",
    "load_apps_example_tests",
    "load_benchmark",
    "load_humaneval",
    "load_humaneval_plus",
    "load_humanevalx",
    "load_mbpp",
    "load_mbpp_plus",
    "load_mbpp_sanitized",
    "load_tasks_jsonl",
    "load_translation",
    "normalize_task_id",
    "save_tasks_jsonl",
]
