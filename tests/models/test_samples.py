"""generate_samples: the JSONL it writes, resuming, and never corrupting existing lines."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from codefalcon.models import Completion, FinishReason, SamplingParams, generate_samples
from codefalcon.models.samples import count_existing_samples
from codefalcon.tasks import Task, TestCase, TestSuite
from codefalcon.tasks import TestStyle as Style  # a Test* name would be collected by pytest

PARAMS = SamplingParams(temperature=1.0, max_new_tokens=8)


def make_task(i: int) -> Task:
    header = f"def f{i}(x):\n"
    suite = TestSuite(Style.ASSERT, (TestCase(code=f"assert f{i}(1) == 1"),), fn_name=f"f{i}")
    return Task(f"t/{i}", header, suite, entry_point=f"f{i}", completion_prefix=header)


TASKS = [make_task(i) for i in range(5)]


class FakeBackend:
    """Deterministic `GenerationBackend`: sample j of a prompt returns ``    return x  # <j>``."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int, int, tuple[str, ...]]] = []

    def generate(
        self, prompts: Sequence[str], params: SamplingParams, n: int = 1, *, first_sample: int = 0
    ) -> list[list[Completion]]:
        self.calls.append((len(prompts), n, first_sample, params.stop))
        return [
            [
                Completion(f"    return x  # {j}\nprint(1)", (1, 2, 3), FinishReason.STOP)
                for j in range(first_sample, first_sample + n)
            ]
            for _ in prompts
        ]


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def run(policy, tasks: Sequence[Task], n: int, path: Path, backend=None, batch_size: int = 16):
    backend = backend if backend is not None else FakeBackend()
    stats = generate_samples(
        policy, tasks, n, PARAMS, path, progress=False, backend=backend, batch_size=batch_size
    )
    return stats, backend


def test_writes_task_completion_and_solution(tiny_policy, tmp_path: Path) -> None:
    out = tmp_path / "samples.jsonl"
    stats, backend = run(tiny_policy, TASKS[:2], 2, out)
    rows = read(out)
    assert [r["task_id"] for r in rows] == ["t/0", "t/0", "t/1", "t/1"]
    assert set(rows[0]) == {"task_id", "completion", "solution"}
    assert rows[1]["completion"] == "    return x  # 1\nprint(1)"
    assert rows[1]["solution"] == "def f0(x):\n    return x  # 1\n"  # stop applied, prefix added
    assert (stats.samples_written, stats.tokens, stats.tasks_skipped) == (4, 12, 0)
    assert backend.calls[0][3] == (
        "\ndef ",
        "\nclass ",
        "\nif __name__",
        "\nprint(",
        "\n#",
        "\nassert",
        "\n```",
    )


def test_tasks_are_grouped_up_to_the_batch_size(tiny_policy, tmp_path: Path) -> None:
    _, backend = run(tiny_policy, TASKS, 2, tmp_path / "s.jsonl", batch_size=4)
    assert [(p, n) for p, n, _, _ in backend.calls] == [(2, 2), (2, 2), (1, 2)]
    _, backend = run(tiny_policy, TASKS[:2], 10, tmp_path / "big.jsonl", batch_size=4)
    assert [(p, n) for p, n, _, _ in backend.calls] == [(1, 10), (1, 10)]


def test_resume_skips_finished_tasks_and_appends(tiny_policy, tmp_path: Path) -> None:
    out = tmp_path / "samples.jsonl"
    run(tiny_policy, TASKS[:2], 2, out)
    before = out.read_text()
    stats, backend = run(tiny_policy, TASKS, 2, out)
    assert out.read_text().startswith(before)  # existing lines untouched
    assert stats.tasks_skipped == 2 and stats.samples_written == 6
    assert [r["task_id"] for r in read(out)].count("t/0") == 2
    stats, backend = run(tiny_policy, TASKS, 2, out)
    assert stats.samples_written == 0 and backend.calls == []


def test_resume_draws_only_the_missing_sample_indices(tiny_policy, tmp_path: Path) -> None:
    out = tmp_path / "samples.jsonl"
    run(tiny_policy, TASKS[:1], 2, out)
    _, backend = run(tiny_policy, TASKS[:1], 5, out)
    assert backend.calls == [(1, 3, 2, backend.calls[0][3])]
    assert [r["completion"].split("# ")[1][0] for r in read(out)] == list("01234")


def test_torn_last_line_is_dropped_and_complete_one_kept(tiny_policy, tmp_path: Path) -> None:
    out = tmp_path / "samples.jsonl"
    run(tiny_policy, TASKS[:1], 1, out)
    good = out.read_text()
    out.write_text(good + '{"task_id": "t/1", "compl')  # crash mid-write
    assert count_existing_samples(out) == {"t/0": 1}
    assert out.read_text() == good
    out.write_text(good + json.dumps({"task_id": "t/1", "completion": "", "solution": ""}))
    assert count_existing_samples(out) == {"t/0": 1, "t/1": 1}
    assert out.read_text().endswith("}\n")
    run(tiny_policy, TASKS[:3], 1, out)
    assert [r["task_id"] for r in read(out)] == ["t/0", "t/1", "t/2"]


def test_duplicate_tasks_are_sampled_once(tiny_policy, tmp_path: Path) -> None:
    stats, _ = run(tiny_policy, [TASKS[0], TASKS[0]], 1, tmp_path / "s.jsonl")
    assert stats.tasks == 1 and stats.samples_written == 1


def test_n_must_be_positive(tiny_policy, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="n must be"):
        run(tiny_policy, TASKS, 0, tmp_path / "s.jsonl")


def test_with_the_tiny_model_end_to_end(tiny_policy, tmp_path: Path) -> None:
    out = tmp_path / "tiny.jsonl"
    stats = generate_samples(tiny_policy, TASKS[:3], 2, PARAMS, out, progress=False, batch_size=4)
    rows = read(out)
    assert len(rows) == 6 and stats.samples_written == 6
    assert all(r["solution"].startswith(f"def f{r['task_id'][-1]}(x):\n") for r in rows)
    assert stats.tokens > 0 and stats.tokens_per_second > 0
    resumed = generate_samples(tiny_policy, TASKS[:4], 2, PARAMS, out, progress=False, batch_size=4)
    assert resumed.tasks_skipped == 3 and len(read(out)) == 8
