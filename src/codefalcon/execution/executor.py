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
import os
import queue
import select
import shutil
import subprocess
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from codefalcon.execution.compare import STDOUT_COMPARATORS
from codefalcon.execution.judge import judge_test, load_failure_verdict
from codefalcon.execution.languages import build_job, find_tools, missing_tools
from codefalcon.execution.result import ExecutionResult, TestResult, Verdict, overall_verdict
from codefalcon.execution.sandbox import LAUNCH_ENV, SandboxPlan, plan_sandbox
from codefalcon.execution.sandbox_worker import frame, free_names
from codefalcon.execution.values import clean_observation, encode
from codefalcon.tasks.reading import PARSE_LOCK
from codefalcon.tasks.record import TestStyle, TestSuite

if TYPE_CHECKING:
    from codefalcon.execution.ray_executor import RayExecutor

log = logging.getLogger(__name__)

MAX_MESSAGE = 96 << 20
"""Largest message a worker may send (a capped stdout or a program's value, with framing)."""


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
    compile_timeout: float = 60.0
    """Seconds allowed to compile one C++/Java/JavaScript test program (a JVM starts slowly)."""
    backend: Literal["local", "ray"] = "local"
    """Where programs run: "local" (``workers`` sandbox workers here) or "ray" (a pool of sandbox
    workers on every node of a Ray cluster: ``pip install 'codefalcon[ray]'``, docs/scaling.md).
    `open_executor` builds the executor this names."""
    address: str | None = None
    """Ray only: the cluster to join ("host:port" of the head, or "auto"). None: whatever
    ``ray.init()`` finds (an existing connection, RAY_ADDRESS, a local ``ray start``) or else a
    new one-machine cluster."""
    workers_per_node: int | None = None
    """Ray only: sandbox workers on each node. None: the node's Ray CPU count (nodes with 0 CPUs,
    such as a head started with ``--num-cpus=0``, run no programs)."""

    def __post_init__(self) -> None:
        if self.compare not in STDOUT_COMPARATORS:
            choices = ", ".join(repr(c) for c in STDOUT_COMPARATORS)
            raise ValueError(f"compare must be one of {choices}, not {self.compare!r}")
        if self.backend not in ("local", "ray"):
            raise ValueError(f"backend must be 'local' or 'ray', not {self.backend!r}")
        if self.backend == "local" and (self.address is not None or self.workers_per_node is not None):
            raise ValueError(
                "address and workers_per_node are Ray settings: set backend='ray', or drop them "
                "(workers sizes the local pool)"
            )
        if self.workers_per_node is not None and self.workers_per_node < 1:
            raise ValueError(
                f"workers_per_node must be >= 1 (or None for the node's CPUs), not {self.workers_per_node}"
            )

    def limits(self) -> dict[str, Any]:
        return {
            "memory_mb": self.memory_mb,
            "fsize_mb": self.fsize_mb,
            "nproc": self.nproc,
            "nofile": self.nofile,
            "cpu_seconds": self.cpu_seconds,
        }


class ResultCache:
    """Results by job (program, tests, early stop, executor config); the least recently used go.

    Infrastructure errors are never kept (the next run may succeed) and hits come back marked
    ``cached``. Size ``config.cache_size``; 0 turns it off, and then `key` skips the hashing,
    which costs as much as a small program's run. Thread-safe.
    """

    def __init__(self, config: ExecutorConfig) -> None:
        self.size = config.cache_size
        self._config_fields = asdict(config)  # frozen: part of every key
        self._items: OrderedDict[str, ExecutionResult] = OrderedDict()
        self._lock = threading.Lock()

    def key(self, program: str, tests: TestSuite, stop: bool) -> str:
        """The job's key ("" when the cache is off)."""
        if not self.size:
            return ""
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

    def get(self, key: str) -> ExecutionResult | None:
        if not self.size:
            return None
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                return ExecutionResult(hit.verdict, hit.tests, hit.n_tests, hit.seconds, cached=True)
        return None

    def put(self, key: str, result: ExecutionResult) -> None:
        if not self.size or result.verdict is Verdict.INFRASTRUCTURE_ERROR:
            return
        with self._lock:
            self._items[key] = result
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class WorkerDied(Exception):
    """The worker process stopped answering (crashed, killed, or hung)."""


class WorkerStalled(WorkerDied):
    """The worker said nothing within its own limits plus `GRACE`."""


GRACE = 3.0
"""Seconds the parent waits beyond the worker's own limits before declaring the worker stuck.

The worker keeps its limits even when a program stops or kills its other processes (it is PID 1
of its sandbox, or another uid), so this only covers scheduling delays on a loaded machine."""


class WorkerProcess:
    """One long-lived sandbox worker and the pipe protocol to it.

    Writes never block: while a large request does not fit in the pipe, answers are read into a
    buffer, so parent and worker can never wait on each other with both pipes full.
    """

    def __init__(self, plan: SandboxPlan) -> None:
        self.plan = plan
        self.proc = subprocess.Popen(
            plan.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            bufsize=0,
            close_fds=True,
            env=LAUNCH_ENV,
        )
        self._to, self._from = self.proc.stdin.fileno(), self.proc.stdout.fileno()
        os.set_blocking(self._to, False)
        self._buf = bytearray()
        try:
            hello = self.recv(30.0)
            if not hello.get("ready"):
                raise WorkerDied(f"worker did not start: {hello}")
            if self.plan.kind == "bwrap" and hello.get("pid") != 1:
                raise WorkerDied(f"sandbox worker is not PID 1 of its sandbox: {hello}")
        except WorkerDied:
            self.close()  # no process left behind by a worker that never served
            raise

    def recv(self, seconds: float) -> dict[str, Any]:
        """The next message, waiting at most ``seconds`` for it."""
        deadline = time.monotonic() + seconds
        while True:
            if len(self._buf) >= 4:
                size = int.from_bytes(self._buf[:4], "big")
                if size > MAX_MESSAGE:
                    raise WorkerDied("oversized message from worker")
                if len(self._buf) >= 4 + size:
                    body = bytes(self._buf[4 : 4 + size])
                    del self._buf[: 4 + size]
                    try:
                        return clean_observation(json.loads(body))
                    except (ValueError, RecursionError) as e:
                        raise WorkerDied(f"garbled message from worker: {e}") from None
            self._wait(deadline, write=False)

    def send(self, data: bytes, seconds: float = GRACE) -> None:
        view = memoryview(data)
        deadline = time.monotonic() + seconds
        while view:
            try:
                view = view[os.write(self._to, view) :]
            except BlockingIOError:
                pass
            except OSError as e:
                raise WorkerDied(f"cannot write to worker: {e}") from None
            if view:
                self._wait(deadline, write=True)

    def _wait(self, deadline: float, *, write: bool) -> None:
        """Wait until the worker has written (buffer it) or, if ``write``, can take more."""
        left = deadline - time.monotonic()
        try:
            readable, writable, _ = select.select([self._from], [self._to] if write else [], [], max(left, 0))
        except (OSError, ValueError) as e:
            raise WorkerDied(f"worker pipe failed: {e}") from None
        if readable:
            try:
                chunk = os.read(self._from, 1 << 16)
            except OSError as e:
                raise WorkerDied(f"cannot read from worker: {e}") from None
            if not chunk:
                raise WorkerDied("worker exited")
            self._buf += chunk
        elif not writable:
            raise WorkerStalled("no answer from worker")

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
        if self.config.backend != "local":
            backend = self.config.backend
            raise ValueError(f"Executor runs programs here; for backend={backend!r}, use open_executor")
        self.plan = plan_sandbox(self.config.sandbox, self.config.python, self.config.limits())
        self.tools = find_tools()
        self._jobs: queue.Queue[tuple[str, str, TestSuite, bool, Future[ExecutionResult]] | None] = (
            queue.Queue()
        )
        self._threads: list[threading.Thread] = []
        self._cache = ResultCache(self.config)
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
            key = self._cache.key(program, tests, stop_on_first_failure)
            fut = pending.get(key)
            if fut is None:
                fut = Future()
                hit = self._cache.get(key)
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
            except HarnessBroken as e:  # no worker starts at all: surface it, never guess a verdict
                fut.set_exception(e)
            except Exception as e:
                # Judging one sample failed in a way we did not foresee: that sample fails (the
                # program may have caused it), never the batch or the run.
                log.warning("codefalcon executor: judging a program failed: %r", e, exc_info=True)
                message = f"the harness failed on this program: {e!r}"[: self.config.detail_chars]
                info = {"error_type": "HarnessError", "message": message}
                fut.set_result(self._all_tests(tests, Verdict.RUNTIME_ERROR, stop, info))
            else:
                self._cache.put(key, result)
                fut.set_result(result)
        if worker is not None:
            worker.close()

    def _run_in_slot(
        self, worker: WorkerProcess | None, program: str, tests: TestSuite, stop: bool
    ) -> tuple[ExecutionResult, WorkerProcess | None]:
        # A worker that dies under a program gets one retry in a fresh worker: if the same
        # program kills that one too, the program did it, not the harness. A worker that stops
        # answering is not retried: only a program can stall it, and it has had its time.
        for attempt in range(2):
            if worker is None:
                worker = self._start_worker()
            try:
                return self._run_program(worker, program, tests, stop), worker
            except WorkerStalled as e:
                worker.close()
                log.debug("worker stalled running a program: %s", e)
                info = {"error_type": "Timeout", "message": "the program stalled its sandbox worker"}
                return self._all_tests(tests, Verdict.TIMEOUT, stop, info), None
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

    def _start_worker(self) -> WorkerProcess:
        try:
            return WorkerProcess(self.plan)
        except (WorkerDied, OSError) as e:
            raise HarnessBroken(f"cannot start a sandbox worker: {e}") from e

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
        """One job on the worker: the header and tests go out in one write, answers stream back.

        Only a reward run of call or stdio tests (where the worker cannot tell a wrong answer)
        sends one test at a time, so the program stops at its first failure.
        """
        cfg, n, started = self.config, len(tests.cases), time.monotonic()
        missing = missing_tools(tests.language, self.tools)
        if missing:  # no program's fault: say so instead of failing every program
            raise HarnessBroken(f"{tests.language} programs need {', '.join(missing)} under /usr")
        step = 1 if stop and tests.style is not TestStyle.ASSERT else max(n, 1)
        header = {
            "op": "job",
            "mode": tests.style.value,
            "program": program,
            "load_timeout": cfg.load_timeout,
            "n": n,
            "stop": stop,
        }
        out: list[TestResult] = []
        sent, loaded, messages = 0, None, [header]
        restart = False  # the last test ended the program's process: the next answer restarts it
        while True:
            batch = range(sent, min(n, sent + step))
            messages += [self._run_message(tests, i, program) for i in batch]
            worker.send(b"".join(map(frame, messages)))
            sent, messages = batch.stop, []
            if loaded is None:
                loaded = worker.recv(cfg.load_timeout + GRACE)
            answers = []
            build = cfg.compile_timeout if tests.style is TestStyle.PROGRAM else 0.0
            for _ in batch:
                answers.append(
                    worker.recv(cfg.timeout + GRACE + build + (cfg.load_timeout if restart else 0.0))
                )
                restart = answers[-1].get("status") in _ENDS_HOST
            if not loaded.get("ok"):
                break
            for i, obs in zip(batch, answers, strict=True):
                if obs.get("status") == "skipped":
                    break
                out.append(self._judge(i, tests, obs))
                if stop and not out[-1].passed:
                    break
            if sent >= n or (stop and out and not out[-1].passed):
                break
        if sent < n:
            worker.send(frame({"op": "end"}))
        seconds = time.monotonic() - started
        if not loaded.get("ok"):
            return self._load_failure(tests, loaded, stop, seconds)
        return ExecutionResult(overall_verdict(out, n), tuple(out), n, seconds)

    def _judge(self, i: int, tests: TestSuite, obs: dict[str, Any]) -> TestResult:
        cfg = self.config
        case = tests.cases[i]
        try:
            return judge_test(
                i, tests.style, case, obs, compare=cfg.compare, tol=cfg.float_tol, detail=cfg.detail_chars
            )
        except Exception as e:  # e.g. a value no comparison can handle: the program's failure
            log.debug("judging test %d failed", i, exc_info=True)
            message = f"the program's result could not be compared: {type(e).__name__}: {e}"
            return TestResult(
                index=i,
                verdict=Verdict.WRONG_ANSWER,
                error_type="InvalidResult",
                message=message[: cfg.detail_chars],
            )

    def _load_failure(
        self, tests: TestSuite, loaded: dict[str, Any], stop: bool, seconds: float
    ) -> ExecutionResult:
        error = loaded.get("error") or {}
        info = {
            "error_type": error.get("type"),
            "message": (error.get("message") or "")[: self.config.detail_chars] or None,
            "line": error.get("line"),
        }
        if loaded.get("kind") == "timeout":
            info["message"] = "time limit exceeded while loading the program"
        if loaded.get("kind") == "memory":
            info["message"] = "memory limit exceeded while loading the program"
        return self._all_tests(tests, load_failure_verdict(loaded), stop, info, seconds)

    def _run_message(self, tests: TestSuite, i: int, program: str) -> dict[str, Any]:
        case = tests.cases[i]
        msg: dict[str, Any] = {"op": "run", "timeout": self.config.timeout}
        if tests.style is TestStyle.STDIO:
            text = case.input if isinstance(case.input, str) else "\n".join(map(str, case.input or []))
            msg["input"] = text
            msg["max_output"] = max(self.config.max_output_bytes, 2 * len(str(case.expected)) + 1024)
        elif tests.style is TestStyle.PROGRAM:
            job = build_job(tests.language, program, case.code or "", self.tools)
            msg.update(job.message(), compile_timeout=self.config.compile_timeout)
            msg["max_output"] = self.config.max_output_bytes
        elif tests.style is TestStyle.CALL:
            msg["input"] = encode(list(case.input or []))
            msg["fn_name"] = tests.fn_name
            msg["method"] = False
        else:
            msg.update(code=case.code, setup=tests.setup, fn_name=tests.fn_name)
            msg["names"] = _test_names(tests.setup or "", case.code or "")
        return msg


_ENDS_HOST = {"timeout", "died", "memory", "invalid", "worker_error"}


class HarnessBroken(RuntimeError):
    """The executor itself cannot run programs (no worker starts): not any program's fault."""


def open_executor(config: ExecutorConfig | None = None) -> Executor | RayExecutor:
    """The executor ``config.backend`` names: a local `Executor` or a `RayExecutor` on a cluster.

    Both offer `run`, `run_batch`, `isolation`, `close` and the context manager, with the same
    verdicts, so callers switch by config alone:

    >>> with open_executor(ExecutorConfig(workers=1)) as ex:
    ...     type(ex).__name__
    'Executor'
    """
    config = config or ExecutorConfig()
    if config.backend == "ray":
        from codefalcon.execution.ray_executor import RayExecutor  # Ray is optional

        return RayExecutor(config)
    return Executor(config)


@lru_cache(maxsize=4096)
def _test_names(setup: str, code: str) -> list[str] | None:
    """Free names of a test (parsed once per distinct test, here rather than in every driver).

    None when it does not parse: the driver then reports that as a harness limit.
    """
    try:
        with PARSE_LOCK:  # free_names parses; see PARSE_LOCK
            return sorted(free_names(setup) | free_names(code))
    except SyntaxError:
        return None
