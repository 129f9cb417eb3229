"""`codefalcon train` with program-dependent rewards, for the multi-process tests to launch.

Run as ``python tests/rl/distributed_worker.py key=value ...`` (one process) or under
``python -m torch.distributed.run --standalone --nproc_per_node 2 tests/rl/distributed_worker.py``.
An untrained tiny model fails every test, so GRPO would learn nothing; like the ``varied_rewards``
fixture of tests/rl/test_train.py, the reward gets a bounded part that depends on the program text.
"""

from __future__ import annotations

import sys

from codefalcon.feedback import Reward, RewardScorer, compose


def score(self, task, program, result, judgement=None):
    return compose(result, {"len": Reward((len(program) % 7) / 6, "test")}, {"len": 1.0})


if __name__ == "__main__":
    RewardScorer.score = score
    from codefalcon.cli import app

    app(["train", *sys.argv[1:]], prog_name="codefalcon")
