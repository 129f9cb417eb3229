"""Execution on Ray: the backend switch, verdict parity with the local executor, and node loss.

The cluster tests start a real two-node Ray cluster on this machine (`LocalCluster`: a head and a
second node, one CPU each, each its own ``ray start``), and one of them kills the second node's
processes in the middle of a batch.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from dataclasses import replace

import pytest

from codefalcon.execution import (
    Executor,
    ExecutorConfig,
    NoNodesLeft,
    RayExecutor,
    Verdict,
    open_executor,
)
from codefalcon.tasks import TestSuite
from execution.test_adversarial import CHEATS
from feedback.programs import BROKEN, REFERENCE, VARIANT
from support import ADD_ASSERTS, ADD_CALLS, ADD_STDIO, call_suite, stdio_suite

ADD = "def add(a, b):\n    return a + b\n"
SUB = "def add(a, b):\n    return a - b\n"
# Short limits, as in conftest.py; the cache is off so every program really runs.
CONFIG = ExecutorConfig(timeout=1.0, load_timeout=3.0, memory_mb=512, cache_size=0)
RAY = replace(CONFIG, backend="ray")
pytestmark = pytest.mark.timeout(240)  # a hung cluster fails the test instead of CI's whole budget


def test_open_executor_follows_the_backend():
    with open_executor(replace(CONFIG, workers=1)) as ex:
        assert type(ex) is Executor and ex.run(ADD, ADD_CALLS).passed
    with pytest.raises(ValueError, match="backend must be"):
        ExecutorConfig(backend="spark")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Ray settings"):
        ExecutorConfig(address="head:6379")
    with pytest.raises(ValueError, match="workers_per_node"):
        ExecutorConfig(backend="ray", workers_per_node=0)
    with pytest.raises(ValueError, match="open_executor"):
        Executor(RAY)


def test_missing_ray_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'codefalcon\[ray\]'"):
        open_executor(RAY)


# --------------------------------------------------------------------------- on a real cluster


@pytest.fixture(scope="module")
def cluster():
    """A head and one more node, connected; everything killed at the end, even after a failure."""
    try:
        import ray
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("CI must run the Ray tests: pip install -e '.[dev]' installs ray")
        pytest.skip("ray is not installed (pip install 'codefalcon[ray]')")
    from codefalcon.execution.ray_cluster import LocalCluster

    with LocalCluster(nodes=2, cpus_per_node=1) as local:
        ray.init(address=local.address, logging_level=logging.WARNING)
        try:
            for node in local.nodes:
                local.node_id(node)  # wait until the cluster lists it alive
            yield local
        finally:
            ray.shutdown()


def _second_node(cluster):
    """A live non-head node and its Ray id (a new one if an earlier test killed it)."""
    node = next((n for n in cluster.nodes if not n.head), None) or cluster.add_node()
    return node, cluster.node_id(node)


def _parity_jobs() -> list[tuple[str, TestSuite]]:
    """Passing, wrong, crashing, timing out, memory-hungry, not compiling, and cheating programs."""
    loop = "def add(a, b):\n    while True:\n        pass\n"
    add_all = call_suite(([[1, 2, 3], 2], 12), ([[], 5], 0), fn_name="add_all")
    jobs = [
        (ADD, ADD_CALLS),
        (ADD, ADD_ASSERTS),
        ("a, b = map(int, input().split())\nprint(a + b)\n", ADD_STDIO),
        (SUB, ADD_CALLS),
        (SUB, ADD_ASSERTS),
        ("print(5)\n", ADD_STDIO),  # the first expected answer, for every input
        (loop, call_suite(([2, 3], 5))),
        ("while True:\n    pass\n", ADD_STDIO),
        ("def add(a, b):\n    return [][a]\n", ADD_CALLS),
        ("def add(a, b):\n    x = bytearray(8 * 1024 ** 3)\n    return a + b\n", ADD_CALLS),
        ("def add(a, b)\n    return a + b\n", ADD_CALLS),
        (REFERENCE["python"], add_all),
        (VARIANT["python"], add_all),
        (BROKEN["python"], add_all),
        ("print(1\n", stdio_suite(("", "1\n"))),
    ]
    jobs += [(program, suite) for program in CHEATS.values() for suite in (ADD_CALLS, ADD_ASSERTS)]
    return jobs


def _observed(result):
    """What must agree between the backends: verdicts, pass flags, error kinds, lines, outputs."""
    tests = [
        (t.verdict, t.error_type, t.line, re.sub(r"0x[0-9a-f]+", "0x", t.actual or "")) for t in result.tests
    ]
    return result.verdict, result.passed, result.coderl_code, result.n_tests, tests


@pytest.mark.slow
def test_ray_verdicts_match_the_local_executor(cluster):
    _, second = _second_node(cluster)
    jobs = _parity_jobs()
    for stop in (False, True):
        with Executor(CONFIG) as local:
            expected = local.run_batch(jobs, stop_on_first_failure=stop)
        with open_executor(RAY) as ex:
            assert type(ex) is RayExecutor and second in ex.nodes and len(ex.nodes) >= 2
            if os.environ.get("CI"):
                assert ex.isolation == "bwrap"
            got = ex.run_batch(jobs, stop_on_first_failure=stop)
            report = ex.last_batch
        assert [_observed(r) for r in got] == [_observed(r) for r in expected], stop
        assert report.n_jobs == len(jobs) and report.n_retried == 0
        assert all(report.per_node.get(n, 0) > 0 for n in ex.nodes), report.per_node  # both nodes ran some
        assert sum(report.per_node.values()) == len(jobs)
    verdicts = {r.verdict for r in expected}
    assert {Verdict.PASSED, Verdict.WRONG_ANSWER, Verdict.TIMEOUT, Verdict.COMPILE_ERROR} <= verdicts
    assert {Verdict.RUNTIME_ERROR, Verdict.MEMORY_EXCEEDED} <= verdicts


@pytest.mark.slow
def test_ray_cache_and_duplicates_behave_like_the_local_executor(cluster):
    jobs = [(ADD, ADD_CALLS), (SUB, ADD_CALLS), (ADD, ADD_CALLS), (ADD, ADD_ASSERTS)]
    cached = replace(CONFIG, cache_size=100)
    runs = {}
    for name, config in (("local", cached), ("ray", replace(cached, backend="ray"))):
        with open_executor(config) as ex:
            done: list[int] = []
            first = ex.run_batch(jobs, progress=done.append)
            second = ex.run_batch(jobs)
            runs[name] = [(r.verdict, r.cached) for r in first + second], sum(done)
    assert runs["ray"] == runs["local"]
    assert runs["ray"][1] == len(jobs)
    assert [c for _, c in runs["ray"][0]] == [False] * 4 + [True] * 4


@pytest.mark.slow
def test_losing_every_node_is_an_error_not_a_verdict(cluster):
    import ray

    with open_executor(RAY) as ex:

        def kill_all_actors(_n: int) -> None:
            for node in list(ex._nodes.values()):  # actors, not nodes: the head must live on
                ray.kill(node.actor)

        with pytest.raises(NoNodesLeft, match="lost"):
            ex.run_batch([(ADD, ADD_CALLS)] * 12 + [(SUB, ADD_CALLS)] * 12, progress=kill_all_actors)
        assert ex.nodes == () and ex.retried > 0


@pytest.mark.slow
def test_a_lost_node_is_retried_elsewhere_and_reported(cluster, caplog):
    node, second = _second_node(cluster)
    head = cluster.node_id(next(n for n in cluster.nodes if n.head))
    slow_add = "import time\ndef add(a, b):\n    time.sleep(0.1)\n    return a + b\n"
    slow_sub = slow_add.replace("a + b", "a - b")
    jobs = [(slow_sub if i % 3 == 0 else slow_add, ADD_CALLS) for i in range(24)]
    finished: list[int] = []

    def kill_second_node(n: int) -> None:
        finished.append(n)
        if sum(finished) >= 4 and node in cluster.nodes:  # mid-batch: both nodes hold chunks
            cluster.kill_node(node)

    with open_executor(RAY) as ex, caplog.at_level(logging.WARNING):
        assert {head, second} <= set(ex.nodes)
        results = ex.run_batch(jobs, progress=kill_second_node)
        report = ex.last_batch
        again = ex.run_batch(jobs[:6])  # the survivors carry on; the lost node is not used again
        assert ex.nodes == (head,) and ex.last_batch.n_retried == 0
    expected = [Verdict.WRONG_ANSWER if i % 3 == 0 else Verdict.PASSED for i in range(24)]
    assert [r.verdict for r in results] == expected  # no lost job became a verdict
    assert [r.verdict for r in again] == expected[:6]
    assert report.lost_nodes == (second,) and report.n_retried > 0
    assert ex.retried == report.n_retried and sum(finished) == len(jobs)
    assert sum(report.per_node.values()) == len(jobs)  # each program completed once
    assert any("re-sent to surviving nodes" in r.getMessage() for r in caplog.records)
