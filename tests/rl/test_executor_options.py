"""The ``executor:`` section of the train and SFT configs: local by default, Ray when asked."""

from __future__ import annotations

import pytest

from codefalcon.configs import ConfigError, load_config
from codefalcon.rl.sft import SFTConfig
from codefalcon.rl.train_config import TrainConfig

TRAIN = ['model="tiny"', 'train={"benchmark": "jsonl", "path": "tasks.jsonl"}']


def test_the_default_executor_is_local_with_the_exec_keys() -> None:
    config = load_config(TrainConfig, None, [*TRAIN, "exec_workers=3", "exec_timeout=2.5"])
    executor = config.executor_config
    assert (executor.backend, executor.workers, executor.timeout) == ("local", 3, 2.5)
    assert executor.address is None and executor.workers_per_node is None


def test_a_ray_section_gives_a_ray_executor_config_without_a_cluster() -> None:
    section = 'executor={"backend": "ray", "address": "head:6379", "workers_per_node": 4}'
    config = load_config(TrainConfig, None, [*TRAIN, section, "exec_timeout=3"])
    executor = config.executor_config
    assert (executor.backend, executor.address, executor.workers_per_node) == ("ray", "head:6379", 4)
    assert executor.timeout == 3.0  # the per-test limit is still exec_timeout
    sft = load_config(SFTConfig, None, ['model="tiny"', "train=[]", 'executor={"backend": "ray"}'])
    assert sft.executor_config.backend == "ray" and sft.executor_config.address is None


def test_ray_settings_without_the_ray_backend_are_rejected() -> None:
    with pytest.raises(ConfigError, match=r"set executor\.backend: ray"):
        load_config(TrainConfig, None, [*TRAIN, 'executor={"address": "head:6379"}'])


def test_a_resumed_run_may_move_its_programs_to_ray() -> None:
    from codefalcon.rl.checkpoint import config_changes
    from codefalcon.rl.train_config import MAY_CHANGE_ON_RESUME

    local = load_config(TrainConfig, None, TRAIN).model_dump(mode="json")
    ray = load_config(TrainConfig, None, [*TRAIN, 'executor={"backend": "ray"}']).model_dump(mode="json")
    assert config_changes(local, ray, MAY_CHANGE_ON_RESUME) == []
    del local["executor"]  # a checkpoint saved before the section existed
    assert config_changes(local, ray, MAY_CHANGE_ON_RESUME) == []
