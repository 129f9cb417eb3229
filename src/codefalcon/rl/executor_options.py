"""The ``executor:`` section of `codefalcon train` and `codefalcon sft`: where programs run.

Programs run on this machine by default (``exec_workers`` sandbox workers), or on every node of a
Ray cluster with ``executor: {backend: ray, address: "head:6379"}`` (docs/scaling.md). The
per-program time limit stays ``exec_timeout`` and the local pool size ``exec_workers``, the keys
both configs had before this section, so old configs mean what they meant. The section only says
where programs run, not what they return (Ray gives the same verdicts), so a resumed run may
change it (`codefalcon.rl.run_dir.RUN_CONTROL_KEYS`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from codefalcon.configs import StrictModel
from codefalcon.execution import ExecutorConfig


class ExecutorOptions(StrictModel):
    """Where the sandbox runs programs (`codefalcon.execution.open_executor`)."""

    backend: Literal["local", "ray"] = "local"
    """local: ``exec_workers`` sandbox workers here; ray: a pool on every node of a Ray cluster
    (``pip install 'codefalcon[ray]'``)."""
    address: str | None = None
    """Ray only: the cluster to join ("host:port" of the head, or "auto"); None: whatever
    ``ray.init()`` finds, or else a new one-machine cluster."""
    workers_per_node: int | None = Field(default=None, ge=1)
    """Ray only: sandbox workers per node; None: each node's Ray CPU count."""

    @model_validator(mode="after")
    def _check(self) -> ExecutorOptions:
        if self.backend == "local" and (self.address is not None or self.workers_per_node is not None):
            raise ValueError(
                "executor.address and executor.workers_per_node are Ray settings: set "
                "executor.backend: ray, or drop them (exec_workers sizes the local pool)"
            )
        return self

    def build(self, workers: int, timeout: float) -> ExecutorConfig:
        """The `ExecutorConfig` of this section with the config's ``exec_workers`` and ``exec_timeout``.

        Example: ``ExecutorOptions(backend="ray").build(2, 4.0)`` ->
        ``ExecutorConfig(workers=2, timeout=4.0, backend="ray", ...)``.
        """
        return ExecutorConfig(
            workers=workers,
            timeout=timeout,
            backend=self.backend,
            address=self.address,
            workers_per_node=self.workers_per_node,
        )
