"""Executor throughput per language on HumanEval-X's reference solutions: compile vs run time.

    python benchmarks/bench_languages.py [--limit 164] [--workers 2] [--languages cpp,java,js]

Every reference of each language runs once with the result cache off, so every program is
compiled (the workers' compile cache only helps programs seen before). The worker times the
compile step of each test apart from the run. Python (HumanEval's own 164 problems in the assert
style) is the baseline measured in the same run. Prints a table: programs/s, the mean compile
and run seconds per program (wall, per worker), and how many passed.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

from codefalcon.execution import Executor, ExecutorConfig
from codefalcon.tasks import TestSuite, load_humanevalx
from codefalcon.tasks.humaneval import load_humaneval

DATA = Path(os.environ.get("CODEFALCON_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
FILES = {"cpp": "humanevalx_cpp", "java": "humanevalx_java", "js": "humanevalx_js"}


def jobs_for(language: str, limit: int) -> list[tuple[str, TestSuite]]:
    tasks = (
        load_humaneval() if language == "python" else load_humanevalx(DATA / f"{FILES[language]}.jsonl.gz")
    )
    return [(t.runnable(t.solutions[0]), t.tests) for t in tasks[:limit]]


def measure(ex: Executor, jobs: list[tuple[str, TestSuite]]) -> tuple[float, float, float, int]:
    started = time.perf_counter()
    results = ex.run_batch(jobs)
    wall = time.perf_counter() - started
    compile_s = sum(t.compile_seconds or 0.0 for r in results for t in r.tests) / len(results)
    total_s = sum(t.seconds for r in results for t in r.tests) / len(results)
    return len(jobs) / wall, compile_s, total_s - compile_s, sum(r.passed for r in results)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=164, help="problems per language")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--languages", default="python,cpp,java,js")
    args = parser.parse_args()
    print(
        f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; workers {args.workers}"
    )
    rows = []
    with Executor(ExecutorConfig(workers=args.workers, cache_size=0)) as ex:
        for language in args.languages.split(","):
            jobs = jobs_for(language, args.limit)
            rows.append((language, len(jobs), measure(ex, jobs)))
    print("\n| language | programs | programs/s | vs python | compile s/program | run s/program | passed |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    base = rows[0][2][0] if rows and rows[0][0] == "python" else None
    for language, n, (rate, comp, run, passed) in rows:
        ratio = f"{rate / base:.3f}x" if base else "-"
        print(f"| {language} | {n} | {rate:.1f} | {ratio} | {comp:.3f} | {run:.3f} | {passed} |")


if __name__ == "__main__":
    main()
