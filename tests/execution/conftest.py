"""One executor for the execution tests: starting workers is the slow part."""

from __future__ import annotations

import os

import pytest

from codefalcon.execution import Executor, ExecutorConfig


@pytest.fixture(scope="session")
def executor():
    # Short limits keep the adversarial tests fast; cache off so every test really runs.
    config = ExecutorConfig(workers=2, timeout=1.5, load_timeout=3.0, memory_mb=512, cache_size=0)
    with Executor(config) as ex:
        if os.environ.get("CI") and ex.isolation != "bwrap":
            pytest.fail("CI must run the executor tests with bubblewrap isolation")
        yield ex


@pytest.fixture()
def one_worker():
    """A fresh single worker, for attacks on what one program leaves for the next."""
    with Executor(ExecutorConfig(workers=1, timeout=2.0, load_timeout=3.0, cache_size=0)) as ex:
        yield ex
