"""Data-parallel RL on several processes (torch.distributed): shard tasks, sum gradients, one writer.

Launched by ``torchrun`` or ``accelerate launch`` (docs/scaling.md); `codefalcon.cli` joins the
process group (`join_process_group`), and every recipe then sees the `World` of
`current_world`. One process is a `World` of size 1, where every method below is a no-op, so the
recipes run the same code either way.

How a step stays the step of one process with the same global batch:

- every rank draws the same global batch of tasks and takes its `World.shard` (whole tasks, so
  a group never straddles two ranks and group-relative advantages are unchanged);
- a sample's seed depends on the run seed, the step, the prompt and its index in the group
  (`codefalcon.models.decoding.row_seed`), never on the rank, so the same programs are sampled;
- the loss is a token mean over the global batch: each rank weighs its micro-batches by their
  share of the *global* loss tokens (`World.sum` of the token counts) and the gradients are then
  summed across ranks (`World.sum_gradients`) before the clipped optimiser step, so every rank
  applies the same update and the weights stay identical (up to float summation order);
- rank 0 alone writes checkpoints, metrics, TensorBoard, evaluations and the final model; the
  others wait at a barrier where they would read what it wrote.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

T = TypeVar("T")

COLLECTIVE_TIMEOUT = datetime.timedelta(hours=2)
"""How long a rank waits at a collective: long enough for rank 0's evaluation of a large split."""


def join_process_group(local_rank: int) -> None:
    """Join the launcher's process group (``env://``: RANK, WORLD_SIZE, MASTER_ADDR/PORT).

    gloo on a CPU machine; on a GPU machine this rank's GPU is ``cuda:<local_rank>`` (so
    ``device: auto`` puts each rank's policy on its own GPU) and CUDA tensors go through NCCL,
    CPU ones through gloo.
    """
    if dist.is_initialized():
        return
    backend = "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        backend = "cpu:gloo,cuda:nccl"
    dist.init_process_group(backend, timeout=COLLECTIVE_TIMEOUT)


def leave_process_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


@dataclass(frozen=True)
class World:
    """This process's place among the training processes: ``rank`` of ``size`` (1: alone)."""

    rank: int = 0
    size: int = 1

    @property
    def is_writer(self) -> bool:
        """The one process that writes the run folder (checkpoints, metrics, evaluations)."""
        return self.rank == 0

    def shard(self, items: Sequence[T]) -> list[T]:
        """This rank's items of a global batch: every ``size``-th from ``rank``.

        Example: 5 tasks on 2 ranks -> rank 0 gets [0, 2, 4] and rank 1 gets [1, 3].
        """
        return list(items[self.rank :: self.size])

    def barrier(self) -> None:
        if self.size > 1:
            dist.barrier()

    def sum(self, value: float) -> float:
        """``value`` summed over the ranks (float64 on the CPU, so token counts add exactly)."""
        if self.size == 1:
            return value
        total = torch.tensor([value], dtype=torch.float64)
        dist.all_reduce(total)
        return float(total)

    def gather(self, value: Any) -> list[Any]:
        """Every rank's ``value`` (a picklable object), in rank order."""
        if self.size == 1:
            return [value]
        gathered: list[Any] = [None] * self.size
        dist.all_gather_object(gathered, value)
        return gathered

    def sum_gradients(self, params: Iterable[nn.Parameter]) -> None:
        """Replace each parameter's gradient by its sum over the ranks, in one flat all-reduce.

        A parameter with no gradient on some rank (its shard had no loss tokens) counts as zero
        there; one with no gradient on any rank keeps None, so the optimiser skips it as it would
        in one process.
        """
        if self.size == 1:
            return
        params = list(params)
        present = torch.tensor([p.grad is not None for p in params], dtype=torch.float64)
        dist.all_reduce(present)
        used = [p for p, n in zip(params, present.tolist(), strict=True) if n > 0]
        for p in used:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        by_device: dict[tuple[torch.device, torch.dtype], list[nn.Parameter]] = {}
        for p in used:
            by_device.setdefault((p.grad.device, p.grad.dtype), []).append(p)
        for group in by_device.values():
            flat = torch.cat([p.grad.reshape(-1) for p in group])
            dist.all_reduce(flat)
            offset = 0
            for p in group:
                n = p.grad.numel()
                p.grad.copy_(flat[offset : offset + n].view_as(p.grad))
                offset += n

    def broadcast_parameters(self, module: nn.Module) -> None:
        """Give every rank rank 0's weights (they load the same files; this makes sure)."""
        if self.size == 1:
            return
        with torch.no_grad():
            for tensor in [*module.parameters(), *module.buffers()]:
                dist.broadcast(tensor.data, src=0)

    def sum_metrics(self, stats: dict[str, float]) -> dict[str, float]:
        """Per-key sums over the ranks (of metrics each rank weighed by its share of the total)."""
        if self.size == 1:
            return stats
        total: dict[str, float] = {}
        for part in self.gather(stats):
            for key, value in part.items():
                total[key] = total.get(key, 0.0) + value
        return total

    def mean_metrics(
        self, record: dict[str, float], weight: float, zero_if_absent: tuple[str, ...] = ()
    ) -> dict[str, float]:
        """The ranks' step metrics as one record: each key's mean weighted by ``weight`` (a rank's
        tasks), over the ranks that report it, or over all ranks for keys starting with one of
        ``zero_if_absent`` (a verdict no sample of a rank had is a share of 0 there). Keys that
        are already global (the loss, the gradient norm) are equal on every rank and stay so.
        """
        if self.size == 1:
            return record
        parts = self.gather((record, weight))
        keys = dict.fromkeys(key for part, _ in parts for key in part)
        merged: dict[str, float] = {}
        for key in keys:
            default = 0.0 if key.startswith(zero_if_absent) else None
            pairs = [(part.get(key, default), w) for part, w in parts]
            pairs = [(v, w) for v, w in pairs if v is not None]
            merged[key] = sum(v * w for v, w in pairs) / sum(w for _, w in pairs)
        return merged


SINGLE = World()
"""One process."""


def current_world() -> World:
    """The `World` of the process group this process joined, or `SINGLE` outside one."""
    if not (dist.is_available() and dist.is_initialized()):
        return SINGLE
    return World(dist.get_rank(), dist.get_world_size())
