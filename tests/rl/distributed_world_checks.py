"""`World`'s collectives on real ranks: run under ``torchrun --nproc_per_node 2`` (gloo, CPU).

tests/rl/test_distributed.py launches it; any failed assertion makes a rank, and torchrun, exit
non-zero.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from codefalcon.rl.distributed import current_world, join_process_group, leave_process_group


def main() -> None:
    join_process_group(int(os.environ["LOCAL_RANK"]))
    world = current_world()
    assert world.size == 2 and world.is_writer == (world.rank == 0)

    # token counts add exactly; a gradient missing on one rank counts as zero there, and a
    # parameter without a gradient anywhere keeps None
    assert world.sum(3.0 + world.rank) == 7.0
    used, unused, one_sided = (
        nn.Parameter(torch.zeros(2)),
        nn.Parameter(torch.zeros(1)),
        nn.Parameter(torch.zeros(1)),
    )
    used.grad = torch.tensor([1.0, 2.0]) * (world.rank + 1)  # rank 0: [1, 2], rank 1: [2, 4]
    if world.rank == 1:
        one_sided.grad = torch.tensor([5.0])
    world.sum_gradients([used, unused, one_sided])
    assert used.grad.tolist() == [3.0, 6.0] and unused.grad is None and one_sided.grad.tolist() == [5.0]

    # rank 0 had 3 tasks, rank 1 one: means weighted 3:1; a verdict rank 1 never saw is 0 there,
    # a key only rank 0 reports is rank 0's
    record = {"reward/total": 1.0, "verdict/passed": 1.0, "only/rank0": 2.0}
    if world.rank == 1:
        record = {"reward/total": 5.0}
    merged = world.mean_metrics(record, 3 if world.rank == 0 else 1, ("verdict/",))
    assert merged == {"reward/total": 2.0, "verdict/passed": 0.75, "only/rank0": 2.0}, merged
    assert world.sum_metrics({"loss": 0.25 * (world.rank + 1)}) == {"loss": 0.75}

    # rank 0's weights everywhere
    module = nn.Linear(2, 1)
    with torch.no_grad():
        module.weight.fill_(float(world.rank))
    world.broadcast_parameters(module)
    assert module.weight.abs().sum().item() == 0.0
    world.barrier()
    leave_process_group()


if __name__ == "__main__":
    main()
