"""`TaskFormatError`: a data file that does not match its format, with where and what.

Benchmark files are large and hand-edited; an error that says only "KeyError: 'test'" sends the
user hunting. Every loader raises this instead, naming the file, the line (jsonl) or the problem
folder (APPS, whose files live in one folder per problem), and the field that is wrong.
"""

from __future__ import annotations

from pathlib import Path


class TaskFormatError(ValueError):
    """A task file is malformed: ``path[:line]: field 'x': problem``.

    ``path`` is the file (for APPS, the file inside the problem folder, so the folder is named
    too); ``line`` is 1-based and None for whole-file formats; ``field`` is a dotted path such as
    ``tests.cases[2].input``, or None when the record could not be parsed at all.

    >>> str(TaskFormatError("t.jsonl", "prompt", "missing", line=3))
    "t.jsonl:3: field 'prompt': missing"
    """

    def __init__(self, path: str | Path, field: str | None, problem: str, line: int | None = None) -> None:
        self.path, self.field, self.problem, self.line = Path(path), field, problem, line
        where = f"{path}:{line}" if line is not None else str(path)
        what = f"field {field!r}: " if field else ""
        super().__init__(f"{where}: {what}{problem}")

    def __reduce__(self) -> tuple[type, tuple[Path, str | None, str, int | None]]:
        # Rebuild from our own arguments, not from the formatted message, so the error survives
        # pickling into and out of worker processes.
        return (type(self), (self.path, self.field, self.problem, self.line))
