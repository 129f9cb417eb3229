"""Tasks: the `Task` record and loaders for benchmarks and generated problems."""

from codefalcon.tasks.record import Task, TestCase, TestStyle, TestSuite

__all__ = ["Task", "TestCase", "TestStyle", "TestSuite"]
