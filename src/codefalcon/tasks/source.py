"""`TaskSource`: where a recipe's tasks come from, as a config section (benchmark, path, split)."""

from __future__ import annotations

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
