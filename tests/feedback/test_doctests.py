"""The docstring examples in codefalcon.feedback show exact outputs: keep them true."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["compose", "judge", "record", "static", "trl_rewards", "unit_tests"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(f"codefalcon.feedback.{name}")
    failures, _ = doctest.testmod(module, verbose=False)
    assert failures == 0
