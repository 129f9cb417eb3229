"""The executor: run many programs against their tests, in parallel, in sandboxes.

>>> from codefalcon.execution import Executor, ExecutorConfig
>>> from codefalcon.tasks import TestCase, TestStyle, TestSuite
>>> suite = TestSuite(TestStyle.CALL, (TestCase(input=[2, 3], expected=5),), fn_name="add")
>>> with Executor(ExecutorConfig(workers=1)) as ex:
...     ex.run("def add(a, b):\\n    return a + b\\n", suite).verdict.value
'passed'
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import shutil
import subprocess
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import asdict, dataclass
from typing import Any

from codefalcon.execution.judge import judge_test, load_failure_verdict
from codefalcon.execution.result import ExecutionResult, TestResult, Verdict, overall_verdict
from codefalcon.execution.sandbox import SandboxPlan, plan_sandbox
from codefalcon.execution.sandbox_worker import Timeout, recv, send
from codefalcon.execution.values import encode
from codefalcon.tasks.record import TestStyle, TestSuite

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExecutorConfig:
    """Limits and isolation for running untrusted programs.

    Every field is per program (or per test where it says so); the defaults suit HumanEval, MBPP
    and APPS on a small machine.
    """

    workers: int = 2
    """Sandbox worker processes; each runs one program at a time (use the number of cores)."""
    timeout: float = 4.0
    """Wall-clock seconds allowed per test (per `check` call for HumanEval)."""
    load_timeout: float = 10.0
    """Seconds allowed to compile the program and run its top-level code."""
    memory_mb: int = 1024
    """Address-space limit of each program process, in MiB."""
    fsize_mb: int = 16
    """Largest file a program may write, in MiB."""
    nproc: int = 64
    """Processes a program may have at once (fork bombs stop here)."""
    nofile: int = 64
    """Open files per program process."""
    cpu_seconds: int = 120
    """CPU seconds per process, a backstop behind the wall-clock timeouts."""
    max_output_bytes: int = 1 << 20
    """Stdout kept per stdio test; more is a wrong answer (at least 2x the expected size)."""
    sandbox: str = "auto"
    """"auto" (bubblewrap if it works, else rlimits only, with a warning), "bwrap" or "none"."""
    python: str | None = None
    """Interpreter for programs; default: the system Python (its stdlib is world-readable)."""
    compare: str = "exact"
    """Stdout comparison: "exact" (trailing whitespace ignored), "tokens", or "apps" (lenient)."""
    float_tol: float | None = None
    """Tolerance for numbers in outputs and return values; None compares exactly."""
    detail_chars: int = 300
    """Truncation of inputs, outputs and messages kept in results."""
    cache_size: int = 200_000
    """Results kept in the in-memory cache, keyed by program, tests and limits; 0 disables."""

    def limits(self) -> dict[str, Any]:
        return {
            "memory_mb": self.memory_mb,
            "fsize_mb": self.fsize_mb,
            "nproc": self.nproc,
            "nofile": self.nofile,
            "cpu_seconds": self.cpu_seconds,
        }


class WorkerDied(Exception):
    """The worker process stopped answering (crashed, killed, or hung)."""


class WorkerProcess:
    """One long-lived sandbox worker and the pipe protocol to it."""

    def __init__(self, plan: SandboxPlan) -> None:
        self.plan = plan
        self.proc = subprocess.Popen(
            plan.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            bufsize=0,
            close_fds=True,
        )
        hello = self._recv(30.0)
        if not hello.get("ready"):
            raise WorkerDied(f"worker did not start: {hello}")

    def _recv(self, seconds: float) -> dict[str, Any]:
        try:
            msg = recv(self.proc.stdout.fileno(), time.monotonic() + seconds)
        except (Timeout, OSError, ValueError) as e:
            raise WorkerDied(f"no answer from worker: {type(e).__name__}") from None
        if msg is None:
            raise WorkerDied("worker exited")
        return msg

    def request(self, msg: dict[str, Any], seconds: float) -> dict[str, Any]:
        try:
            send(self.proc.stdin.fileno(), msg)
        except OSError as e:
            raise WorkerDied(f"cannot write to worker: {e}") from None
        # The worker enforces the real limit; this grace covers a worker that is itself stuck.
        return self._recv(seconds + 10.0)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


class Executor:
    """A pool of sandbox workers with a batch API and a result cache.

    Use as a context manager, or call `close()`. Thread-safe: `run_batch` may be called from
    several threads. Each worker is owned by one long-lived thread: bubblewrap's
    ``--die-with-parent`` is tied to the thread that started it.
    """

    def __init__(self, config: ExecutorConfig | None = None) -> None:
        self.config = config or ExecutorConfig()
        if self.config.compare not in ("exact", "tokens", "apps"):
            raise ValueError(f"compare must be 'exact', 'tokens' or 'apps', not {self.config.compare!r}")
        self._config_fields = asdict(self.config)  # frozen: part of every cache key
        self.plan = plan_sandbox(self.config.sandbox, self.config.python, self.config.limits())
        self._jobs: queue.Queue[tuple[str, str, TestSuite, bool, Future[ExecutionResult]] | None] = (
            queue.Queue()
        )
        self._threads: list[threading.Thread] = []
        self._cache: OrderedDict[str, ExecutionResult] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def isolation(self) -> str:
        """ "bwrap" (namespaces + rlimits) or "none" (rlimits only)."""
        return self.plan.kind

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop every worker and remove their scratch space."""
        with self._lock:
            threads, self._threads = self._threads, []
        for _ in threads:
            self._jobs.put(None)
        for t in threads:
            t.join()
        if self.plan.kind == "none":
            shutil.rmtree(self.plan.tmp, ignore_errors=True)

    # ------------------------------------------------------------------ public API

    def run(self, program: str, tests: TestSuite, *, stop_on_first_failure: bool = False) -> ExecutionResult:
        """Run one program against one suite."""
        return self.run_batch([(program, tests)], stop_on_first_failure=stop_on_first_failure)[0]

    def run_batch(
        self,
        jobs: Sequence[tuple[str, TestSuite]],
        *,
        stop_on_first_failure: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> list[ExecutionResult]:
        """Run every (program, tests) pair; results come back in the order given.

        ``stop_on_first_failure``: stop a program at its first failing test (enough for a
        reward); evaluation runs every test. ``progress(n)`` is called as n more programs finish.
        """
        futures: list[Future[ExecutionResult]] = []
        pending: dict[str, Future[ExecutionResult]] = {}  # identical jobs in one batch run once
        for program, tests in jobs:
            key = self._key(program, tests, stop_on_first_failure)
            fut = pending.get(key)
            if fut is None:
                fut = Future()
                hit = self._cache_get(key)
                if hit is not None:
                    fut.set_result(hit)
                else:
                    self._start_threads()
                    self._jobs.put((key, program, tests, stop_on_first_failure, fut))
                    if self.config.cache_size:
                        pending[key] = fut
            if progress:
                fut.add_done_callback(lambda _f: progress(1))
            futures.append(fut)
        return [f.result() for f in futures]

    # ------------------------------------------------------------------ internals

    def _start_threads(self) -> None:
        with self._lock:
            while len(self._threads) < max(1, self.config.workers):
                t = threading.Thread(target=self._serve, daemon=True, name="codefalcon-worker")
                t.start()
                self._threads.append(t)

    def _serve(self) -> None:
        """One worker slot: take programs from the queue until told to stop."""
        worker: WorkerProcess | None = None
        while True:
            item = self._jobs.get()
            if item is None:
                break
            key, program, tests, stop, fut = item
            try:
                result, worker = self._run_in_slot(worker, program, tests, stop)
            except Exception as e:  # the harness itself failed: surface it, never guess a verdict
                fut.set_exception(e)
            else:
                self._cache_put(key, result)
                fut.set_result(result)
        if worker is not None:
            worker.close()

    def _key(self, program: str, tests: TestSuite, stop: bool) -> str:
        blob = json.dumps(
            [
                program,
                tests.style.value,
                tests.fn_name,
                tests.setup,
                [[c.input, c.expected, c.code] for c in tests.cases],
                stop,
                self._config_fields,
            ],
            default=repr,
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()

    def _cache_get(self, key: str) -> ExecutionResult | None:
        if not self.config.cache_size:
            return None
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return ExecutionResult(hit.verdict, hit.tests, hit.n_tests, hit.seconds, cached=True)
        return None

    def _cache_put(self, key: str, result: ExecutionResult) -> None:
        if not self.config.cache_size or result.verdict is Verdict.INFRASTRUCTURE_ERROR:
            return
        with self._lock:
            self._cache[key] = result
            while len(self._cache) > self.config.cache_size:
                self._cache.popitem(last=False)

    def _run_in_slot(
        self, worker: WorkerProcess | None, program: str, tests: TestSuite, stop: bool
    ) -> tuple[ExecutionResult, WorkerProcess | None]:
        # A worker that dies under a program gets one retry in a fresh worker: if the same
        # program kills that one too, the program did it (e.g. kill -9 -1), not the harness.
        for attempt in range(2):
            if worker is None:
                worker = WorkerProcess(self.plan)
            try:
                return self._run_program(worker, program, tests, stop), worker
            except WorkerDied as e:
                worker.close()
                worker = None
                log.debug("worker died running a program (attempt %d): %s", attempt + 1, e)
        return self._all_tests(
            tests,
            Verdict.RUNTIME_ERROR,
            stop,
            {
                "error_type": "HarnessKilled",
                "message": "the program killed or hung its sandbox worker (twice)",
            },
        ), None

    def _all_tests(
        self, tests: TestSuite, verdict: Verdict, stop: bool, info: dict[str, Any], seconds: float = 0.0
    ) -> ExecutionResult:
        n = len(tests.cases)
        shown = 1 if stop and n else n
        results = tuple(TestResult(index=i, verdict=verdict, **info) for i in range(shown))
        return ExecutionResult(overall_verdict(results, n) if results else verdict, results, n, seconds)

    def _run_program(
        self, worker: WorkerProcess, program: str, tests: TestSuite, stop: bool
    ) -> ExecutionResult:
        cfg = self.config
        started = time.monotonic()
        loaded = worker.request(
            {
                "op": "load",
                "mode": tests.style.value,
                "program": program,
                "timeout": cfg.load_timeout,
            },
            cfg.load_timeout,
        )
        if not loaded.get("ok"):
            error = loaded.get("error") or {}
            info = {
                "error_type": error.get("type"),
                "message": (error.get("message") or "")[: cfg.detail_chars] or None,
                "line": error.get("line"),
            }
            if loaded.get("kind") == "timeout":
                info["message"] = "time limit exceeded while loading the program"
            worker.request({"op": "end"}, 10.0)
            return self._all_tests(
                tests, load_failure_verdict(loaded), stop, info, time.monotonic() - started
            )
        out: list[TestResult] = []
        for i, case in enumerate(tests.cases):
            obs = worker.request(self._run_message(tests, i), cfg.timeout)
            res = judge_test(
                i,
                tests.style,
                case,
                obs,
                compare=cfg.compare,
                tol=cfg.float_tol,
                detail=cfg.detail_chars,
            )
            out.append(res)
            if stop and not res.passed:
                break
        worker.request({"op": "end"}, 10.0)
        verdict = overall_verdict(out, len(tests.cases))
        return ExecutionResult(verdict, tuple(out), len(tests.cases), time.monotonic() - started)

    def _run_message(self, tests: TestSuite, i: int) -> dict[str, Any]:
        case = tests.cases[i]
        msg: dict[str, Any] = {"op": "run", "timeout": self.config.timeout}
        if tests.style is TestStyle.STDIO:
            text = case.input if isinstance(case.input, str) else "\n".join(map(str, case.input or []))
            msg["input"] = text
            msg["max_output"] = max(self.config.max_output_bytes, 2 * len(str(case.expected)) + 1024)
        elif tests.style is TestStyle.CALL:
            msg["input"] = encode(list(case.input or []))
            msg["fn_name"] = tests.fn_name
            msg["method"] = False
        else:
            msg.update(code=case.code, setup=tests.setup, fn_name=tests.fn_name)
        return msg
