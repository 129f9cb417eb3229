"""A throwaway Ray cluster on this machine: a head and more nodes, each one ``ray start``.

For tests, benchmarks and trying ``backend="ray"`` without a second machine:

    with LocalCluster(nodes=2) as cluster:
        config = ExecutorConfig(backend="ray", address=cluster.address)
        with open_executor(config) as ex:
            ...

Every node is its own ``ray start`` in a new session: what it leaves running (the raylet and its
helpers; on the head also the GCS) keeps that process group, and the workers a raylet starts
(which make their own groups) are found as its descendants. `kill_node` freezes, then kills,
exactly those processes, the way a machine that loses power disappears; `stop` does that to
every node. Nothing else is touched (``ray stop`` kills every Ray process of every user on the
machine). Resources are small: ``cpus_per_node`` CPUs, no GPU, a 100 MB object store, no
dashboard, no usage stats, fresh ports.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LocalNode:
    """One ``ray start`` of the cluster."""

    pgid: int
    """Process group of what ``ray start`` left running (that ``ray start``'s pid)."""
    manager_port: int
    """The raylet's port: how the node is found in ``ray.nodes()``."""
    head: bool


class LocalCluster:
    """A Ray head plus ``nodes - 1`` more nodes on this machine, all stopped on `stop`/exit."""

    def __init__(
        self,
        nodes: int = 2,
        *,
        cpus_per_node: int = 1,
        object_store_mb: int = 100,
        start_timeout: float = 120.0,
    ) -> None:
        self.n_start = nodes
        self.cpus_per_node = cpus_per_node
        self.object_store_mb = object_store_mb
        self.start_timeout = start_timeout
        # Short on purpose: Ray's socket paths under it must stay below 108 characters.
        self.temp_dir = Path(tempfile.mkdtemp(prefix="cf-ray-", dir="/tmp"))
        self.nodes: list[LocalNode] = []
        self.port = 0

    @property
    def address(self) -> str:
        """The head's GCS address, for ``ray.init`` and ``ExecutorConfig.address``."""
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> LocalCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start the head and the other nodes (each ``ray start`` returns once it runs)."""
        self.port = _free_port()
        head = [
            "--head",
            f"--port={self.port}",
            f"--temp-dir={self.temp_dir}",
            "--include-dashboard=false",
            f"--dashboard-port={_free_port()}",
            f"--ray-client-server-port={_free_port()}",
        ]
        self._start_node(head)
        for _ in range(self.n_start - 1):
            self.add_node()

    def add_node(self) -> LocalNode:
        """One more node joining the head."""
        return self._start_node([f"--address={self.address}"])

    def node_id(self, node: LocalNode, timeout: float = 60.0) -> str:
        """The node's Ray id once the cluster lists it alive (needs ``ray.init`` in this process)."""
        import ray

        deadline = time.monotonic() + timeout
        while True:
            for info in ray.nodes():
                if info.get("NodeManagerPort") == node.manager_port and info.get("Alive"):
                    return info["NodeID"]
            if time.monotonic() > deadline:
                raise TimeoutError(f"node on port {node.manager_port} not alive after {timeout:.0f} s")
            time.sleep(0.1)

    def kill_node(self, node: LocalNode, timeout: float = 30.0) -> None:
        """SIGSTOP every process of the node (repeating until no new ones appear), then SIGKILL."""
        pids: set[int] = set()
        while True:
            found = _processes(node.pgid, pids)
            if found <= pids:
                break
            pids |= found
            _signal(pids, signal.SIGSTOP)
        _signal(pids, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        if node in self.nodes:
            self.nodes.remove(node)

    def stop(self) -> None:
        """Kill every node (the head last) and remove the temporary folder."""
        for node in sorted(self.nodes, key=lambda n: n.head):
            self.kill_node(node)
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def _start_node(self, role: list[str]) -> LocalNode:
        manager_port = _free_port()
        argv = [
            _ray_command(),
            "start",
            *role,
            f"--num-cpus={self.cpus_per_node}",
            "--num-gpus=0",
            f"--object-store-memory={self.object_store_mb << 20}",
            f"--node-manager-port={manager_port}",
            f"--dashboard-agent-listen-port={_free_port()}",
            "--disable-usage-stats",
        ]
        log_path = self.temp_dir / f"node-{len(self.nodes)}.log"
        # A loopback cluster needs no tokens; without this, a ~/.ray/auth_token left by an earlier
        # ray.init() turns the head's token auth on, and a driver without the token is refused.
        env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
        with log_path.open("w") as out:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
            )
        node = LocalNode(pgid=proc.pid, manager_port=manager_port, head="--head" in role)
        self.nodes.append(node)  # before waiting: `stop` cleans up a start that failed
        try:
            rc = proc.wait(self.start_timeout)
        except subprocess.TimeoutExpired:
            rc = None
        if rc != 0:
            tail = log_path.read_text()[-2000:]
            raise RuntimeError(f"`ray start {' '.join(role)}` failed (exit {rc}):\n{tail}")
        return node


def _ray_command() -> str:
    """The ``ray`` script beside this Python (a venv's), else the one on PATH."""
    beside = Path(sys.executable).with_name("ray")
    found = str(beside) if beside.exists() else shutil.which("ray")
    if not found:
        raise FileNotFoundError("no `ray` command: pip install 'codefalcon[ray]'")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state, ppid, pgrp, ...)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _alive(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def _processes(pgid: int, known: set[int]) -> set[int]:
    """The live processes of group ``pgid``, and of ``known``, with all their descendants."""
    pids = {p for p in known if _alive(p)}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields is not None and fields[0] != "Z" and int(fields[2]) == pgid:
                pids.add(int(entry))
    todo = list(pids)
    while todo:
        pid = todo.pop()
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    children = {int(c) for c in f.read().split()}
            except OSError:
                continue
            todo += children - pids
            pids |= children
    return pids


def _signal(pids: set[int], sig: signal.Signals) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
