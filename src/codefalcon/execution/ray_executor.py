"""Execution on a Ray cluster: a sandbox worker pool on every node behind the local batch API.

    with open_executor(ExecutorConfig(backend="ray", address="head-node:6379")) as ex:
        results = ex.run_batch(jobs)  # as with the local Executor

Each node with CPUs gets one `NodeExecutor` actor, pinned to it, which owns a local `Executor`:
programs run in that node's sandbox workers, never in the actor's process. The driver cuts a
batch into chunks and keeps every node's workers busy (``IN_FLIGHT_PER_WORKER`` chunks per
worker, refilled as chunks finish, so a node with more free capacity takes more); results come
back in input order. The result cache lives here on the driver, with the local executor's key and
rules, and the nodes keep none.

A chunk whose actor is lost (its node died, its process was killed) is sent to a surviving node:
the job is counted (`RayExecutor.retried`, `RayExecutor.last_batch`) and logged, and never
turned into a verdict. A lost node stays out of this executor (a restarted machine rejoins
under a new node id, picked up at the next batch). With no node left, `NoNodesLeft` is raised.

Ray is imported only when a `RayExecutor` is built (``pip install 'codefalcon[ray]'``).
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from codefalcon.execution.executor import Executor, ExecutorConfig, HarnessBroken, ResultCache
from codefalcon.execution.result import ExecutionResult
from codefalcon.tasks.record import TestCase, TestStyle, TestSuite

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'codefalcon[ray]'"
IN_FLIGHT_PER_WORKER = 2
"""Chunks a node holds per sandbox worker: one running, one queued behind it, so a worker never
waits for the driver's round trip."""
CHUNK_MAX = 16
"""Most programs per chunk: what a lost node can take down with each chunk, and re-run."""
START_TIMEOUT = 120.0
"""Seconds a node's actor may take to start and pass its probe before it is left out."""
_PROBE = ("print(1)\n", TestSuite(TestStyle.STDIO, (TestCase(input="", expected="1\n"),)))
"""A program every working sandbox passes: each node runs it before it gets any job."""


class NoNodesLeft(HarnessBroken):
    """Every node of the executor was lost: nothing is left to run the remaining programs."""


def import_ray() -> Any:
    """The ``ray`` module, or an ImportError that names the extra to install."""
    try:
        import ray
    except ImportError as e:
        raise ImportError(f"ExecutorConfig(backend='ray') needs Ray: {INSTALL_HINT}") from e
    return ray


class NodeExecutor:
    """The Ray actor on one node: a local `Executor` whose sandbox workers run the programs."""

    def __init__(self, config: ExecutorConfig) -> None:
        self.executor = Executor(config)

    def ready(self) -> dict[str, Any]:
        """Run the probe program; what the node offers (raises if its sandbox cannot pass it)."""
        probe = self.executor.run(*_PROBE)
        if not probe.passed:
            raise HarnessBroken(f"the probe program did not pass on this node: {probe.first_failure}")
        return {"isolation": self.executor.isolation, "host": socket.gethostname(), "pid": os.getpid()}

    def run_batch(self, jobs: list[tuple[str, TestSuite]], stop: bool) -> list[ExecutionResult]:
        """One chunk; several run at once (a threaded actor), sharing the node's workers."""
        return self.executor.run_batch(jobs, stop_on_first_failure=stop)

    def close(self) -> None:
        self.executor.close()


@dataclass(frozen=True)
class BatchReport:
    """How the last `RayExecutor.run_batch` went on the cluster."""

    n_jobs: int
    """Programs in the batch (cache hits included)."""
    n_retried: int
    """Program runs sent to another node because theirs was lost (none became a verdict)."""
    lost_nodes: tuple[str, ...] = ()
    """Ray node ids lost during the batch."""
    per_node: Mapping[str, int] = field(default_factory=dict)
    """Program runs each node completed (node id -> count); cache hits are on no node."""
    seconds: float = 0.0


_Chunk = list[tuple[str, list[int]]]
"""Runs sent to a node together: (cache key, indices of the batch's jobs it answers)."""


def _lost_errors(ray: Any) -> tuple[type[BaseException], ...]:
    """Ray's errors for a task whose actor, node or result is gone: the job is re-run elsewhere."""
    ex = ray.exceptions
    return (ex.RayActorError, ex.ObjectLostError, ex.NodeDiedError)


@dataclass
class _Node:
    node_id: str
    actor: Any
    workers: int
    isolation: str
    in_flight: int = 0

    @property
    def free(self) -> int:
        return IN_FLIGHT_PER_WORKER * self.workers - self.in_flight


class RayExecutor:
    """`Executor`'s interface over a pool of sandbox workers on every node of a Ray cluster.

    Build it with `open_executor` from an `ExecutorConfig` with ``backend="ray"``. It joins the
    cluster (``ray.init(address=config.address)``) unless this process is already connected,
    and disconnects on `close` only if it connected. Thread-safe: batches from several threads
    run one after another.
    """

    def __init__(self, config: ExecutorConfig) -> None:
        if config.backend != "ray":
            raise ValueError(
                f"RayExecutor needs backend='ray', not {config.backend!r}: use open_executor(config)"
            )
        self.config = config
        self._ray = ray = import_ray()
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            ray.init(address=config.address, logging_level=logging.WARNING)
        elif config.address:
            log.info("codefalcon ray executor: already connected to Ray; address %r not used", config.address)
        self._actor_class = ray.remote(num_cpus=0, max_restarts=0)(NodeExecutor)
        self._cache = ResultCache(config)
        self._nodes: dict[str, _Node] = {}
        self._lost: set[str] = set()
        self._lock = threading.Lock()
        self.retried = 0
        """Program runs re-sent to another node since this executor started."""
        self.last_batch = BatchReport(0, 0)
        try:
            self._add_nodes()
            if not self._nodes:
                raise HarnessBroken("no Ray node with CPUs could start a sandbox pool (see the log)")
        except BaseException:
            self.close()
            raise

    @property
    def isolation(self) -> str:
        """ "bwrap" if every node isolates with namespaces, else "none" (rlimits only somewhere)."""
        kinds = {n.isolation for n in self._nodes.values()}
        return "bwrap" if kinds == {"bwrap"} else "none"

    @property
    def nodes(self) -> tuple[str, ...]:
        """Ray node ids now running programs for this executor."""
        return tuple(self._nodes)

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop every node's sandbox workers and the actors; disconnect if we connected."""
        ray = self._ray
        nodes, self._nodes = list(self._nodes.values()), {}
        if nodes and ray.is_initialized():  # (someone may have shut Ray down already)
            ray.wait([n.actor.close.remote() for n in nodes], num_returns=len(nodes), timeout=10.0)
            for n in nodes:
                try:
                    ray.kill(n.actor)
                except Exception:  # gone with its node
                    pass
        if self._owns_ray and ray.is_initialized():
            ray.shutdown()
        self._owns_ray = False

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
        """Run every (program, tests) pair on the cluster; results come back in the order given.

        The same contract as `Executor.run_batch`; `last_batch` then says what the cluster did.
        """
        with self._lock:
            started = time.monotonic()
            jobs = list(jobs)
            results: list[ExecutionResult | None] = [None] * len(jobs)
            runs = self._plan_runs(jobs, stop_on_first_failure, results, progress)
            if runs:
                self._add_nodes()  # nodes that joined since the last batch
            try:
                report = self._dispatch(jobs, runs, stop_on_first_failure, results, progress)
            finally:  # an aborted batch leaves nothing counted against the nodes' slots
                for node in self._nodes.values():
                    node.in_flight = 0
            self.last_batch = replace(report, n_jobs=len(jobs), seconds=time.monotonic() - started)
            return results  # type: ignore[return-value]  # every slot is filled

    # ------------------------------------------------------------------ internals

    def _plan_runs(
        self,
        jobs: list[tuple[str, TestSuite]],
        stop: bool,
        results: list[ExecutionResult | None],
        progress: Callable[[int], None] | None,
    ) -> list[tuple[str, list[int]]]:
        """(cache key, indices) of each run needed: cache hits are filled, identical jobs run once."""
        runs: list[tuple[str, list[int]]] = []
        by_key: dict[str, list[int]] = {}
        for i, (program, tests) in enumerate(jobs):
            key = self._cache.key(program, tests, stop)
            if key in by_key:
                by_key[key].append(i)
                continue
            hit = self._cache.get(key)
            if hit is not None:
                results[i] = hit
                if progress:
                    progress(1)
                continue
            runs.append((key, [i]))
            if key:
                by_key[key] = runs[-1][1]
        return runs

    def _dispatch(
        self,
        jobs: list[tuple[str, TestSuite]],
        runs: list[tuple[str, list[int]]],
        stop: bool,
        results: list[ExecutionResult | None],
        progress: Callable[[int], None] | None,
    ) -> BatchReport:
        """Keep every node's slots full of chunks until each run has its result."""
        ray = self._ray
        slots = sum(n.free for n in self._nodes.values())
        size = max(1, min(CHUNK_MAX, math.ceil(len(runs) / (4 * max(slots, 1)))))
        chunks: deque[_Chunk] = deque(runs[i : i + size] for i in range(0, len(runs), size))
        in_flight: dict[Any, tuple[_Node, _Chunk]] = {}
        retried, lost, per_node = 0, [], dict.fromkeys(self._nodes, 0)
        while chunks or in_flight:
            self._fill(chunks, in_flight, jobs, stop)
            if not in_flight:
                left = sum(len(c) for c in chunks)
                gone = ", ".join(lost) or "in earlier batches"
                raise NoNodesLeft(f"every Ray node of the executor was lost ({gone}); {left} runs unfinished")
            [ref], _ = ray.wait(list(in_flight), num_returns=1)
            node, chunk = in_flight.pop(ref)
            node.in_flight -= 1
            try:
                out = ray.get(ref)
            except _lost_errors(ray) as e:
                if node.node_id in self._nodes:
                    self._drop(node, e)
                    lost.append(node.node_id)
                chunks.appendleft(chunk)  # first in line for a surviving node
                retried += len(chunk)
                self.retried += len(chunk)
                continue
            except ray.exceptions.RayTaskError as e:  # e.g. HarnessBroken: a tool missing on the node
                raise e.as_instanceof_cause() from None
            for (key, indices), result in zip(chunk, out, strict=True):
                self._cache.put(key, result)
                for i in indices:
                    results[i] = result
            per_node[node.node_id] = per_node.get(node.node_id, 0) + len(chunk)
            if progress:
                progress(sum(len(ix) for _, ix in chunk))
        if retried:
            log.warning(
                "codefalcon ray executor: %d program runs re-sent to surviving nodes after losing %s",
                retried,
                ", ".join(lost),
            )
        return BatchReport(0, retried, tuple(lost), per_node)

    def _fill(
        self,
        chunks: deque[_Chunk],
        in_flight: dict[Any, tuple[_Node, _Chunk]],
        jobs: list[tuple[str, TestSuite]],
        stop: bool,
    ) -> None:
        """Send chunks to the nodes with the most free slots until none is free or none is left."""
        for node in sorted(self._nodes.values(), key=lambda n: -n.free):
            while chunks and node.free > 0:
                chunk = chunks.popleft()
                ref = node.actor.run_batch.remote([jobs[ix[0]] for _, ix in chunk], stop)
                in_flight[ref] = (node, chunk)
                node.in_flight += 1

    def _drop(self, node: _Node, error: BaseException) -> None:
        """Take a lost node out of the pool (its actor is killed in case it still runs)."""
        del self._nodes[node.node_id]
        self._lost.add(node.node_id)
        log.warning(
            "codefalcon ray executor: lost node %s (%s: %s); its programs go to the %d other nodes",
            node.node_id,
            type(error).__name__,
            str(error).splitlines()[0][:200] if str(error) else "",
            len(self._nodes),
        )
        try:
            self._ray.kill(node.actor)
        except Exception:  # already gone with its node
            pass

    def _add_nodes(self) -> None:
        """Start an actor on each alive node with CPUs that has none yet; wait for their probes."""
        ray = self._ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        starting: dict[Any, tuple[str, Any, int]] = {}
        for info in ray.nodes():
            node_id, cpus = info["NodeID"], int(info.get("Resources", {}).get("CPU", 0))
            if not info.get("Alive") or cpus < 1 or node_id in self._nodes or node_id in self._lost:
                continue
            workers = self.config.workers_per_node or cpus
            local = replace(
                self.config,
                backend="local",
                address=None,
                workers_per_node=None,
                workers=workers,
                cache_size=0,
            )
            actor = self._actor_class.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
                max_concurrency=IN_FLIGHT_PER_WORKER * workers + 2,  # + ready and close
            ).remote(local)
            starting[actor.ready.remote()] = (node_id, actor, workers)
        if not starting:
            return
        done, late = ray.wait(list(starting), num_returns=len(starting), timeout=START_TIMEOUT)
        for ref in [*done, *late]:
            node_id, actor, workers = starting[ref]
            try:
                if ref in late:
                    raise TimeoutError(f"not ready within {START_TIMEOUT:.0f} s")
                info = ray.get(ref)
            except Exception as e:
                log.warning("codefalcon ray executor: node %s left out: %s", node_id, str(e)[:500])
                self._lost.add(node_id)
                ray.kill(actor)
                continue
            self._nodes[node_id] = _Node(node_id, actor, workers, info["isolation"])
            log.info(
                "codefalcon ray executor: node %s (%s): %d workers, %s",
                node_id,
                info["host"],
                workers,
                info["isolation"],
            )
