"""`TaskSource`: where a recipe's tasks come from, as a config section (benchmark, path, split)."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from codefalcon.configs import StrictModel
from codefalcon.tasks.record import Task
from codefalcon.tasks.registry import BenchmarkName


class TaskSource(StrictModel):
    """Where tasks come from: a benchmark loader, its data path and split."""

    benchmark: BenchmarkName
    """Loader to use (see `codefalcon evaluate --help`)."""
    path: str | None = None
    """Data file or folder; HumanEval needs none."""
    split: str | None = "train"
    """Split to keep (None: every task of the file; HumanEval-X and translate tasks are all test)."""
    limit: int | None = Field(default=None, ge=1)
    """Keep only the first N tasks."""
    language: str | None = None
    """humanevalx: the file's language (cpp, java, js, python); None: read from its task ids."""
    source: str | None = None
    """translate: the language of the programs shown."""
    target: str | None = None
    """translate: the language to write in."""

    def load(self) -> list[Task]:
        from codefalcon.tasks.registry import load_benchmark

        tasks = load_benchmark(
            self.benchmark,
            self.path,
            self.split,
            language=self.language,
            source=self.source,
            target=self.target,
        )
        return tasks[: self.limit] if self.limit else tasks


def load_sources(sources: TaskSource | Sequence[TaskSource], name: str = "train") -> list[Task]:
    """The tasks of one source, or of several one after another (config key ``name``).

    Several sources mix benchmarks (MBPP train with generated tasks, say); a task id that two of
    them share is an error, since results files, filters and checkpoints key tasks by id.
    """
    listed = [sources] if isinstance(sources, TaskSource) else list(sources)
    tasks: list[Task] = []
    first_source: dict[str, int] = {}
    for index, source in enumerate(listed):
        for task in source.load():
            if task.task_id in first_source:
                raise ValueError(
                    f"{name}[{index}]: task id {task.task_id!r} is also in {name}"
                    f"[{first_source[task.task_id]}]; task ids must be distinct across sources"
                )
            first_source[task.task_id] = index
            tasks.append(task)
    return tasks
