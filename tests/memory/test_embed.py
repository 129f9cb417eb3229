"""Embedders: shapes, normalisation, determinism, and the offline MiniLM."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from codefalcon.memory import HashingEmbedder, MiniLMEmbedder, load_embedder, minilm_path
from codefalcon.memory.embed import drop_doctests


def test_hashing_rows_are_unit_float32_and_deterministic() -> None:
    emb = HashingEmbedder(128)
    x = emb.embed(["Sort the list.", "Sort the list.", "", "Count the vowels."])
    assert x.shape == (4, 128) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x[[0, 1, 3]], axis=1), 1.0, atol=1e-6, rtol=0)
    assert not x[2].any()  # empty text: a zero row, not NaN
    assert np.array_equal(x[0], x[1])
    # crc32 hashing, not Python's salted hash(): the same vector in a fresh process
    code = "from codefalcon.memory import HashingEmbedder; print(HashingEmbedder(128).embed(['Sort the list.'])[0].tolist())"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    np.testing.assert_allclose(np.array(eval(other)), x[0], atol=1e-7, rtol=0)


def test_hashing_similarity_follows_meaning() -> None:
    x = HashingEmbedder().embed(["Add up the numbers.", "Add up all the numbers!", "Reverse the string."])
    assert x[0] @ x[1] > 0.6 > 0.1 > abs(x[0] @ x[2])  # measured 0.68 and 0.0002


def test_doctest_examples_are_ignored() -> None:
    text = 'def f(xs):\n    """Sum it.\n    >>> f([1, 2])\n    3\n    """\n'
    assert drop_doctests(text) == 'def f(xs):\n    """Sum it.\n    """'


def test_load_embedder_names() -> None:
    assert load_embedder("hashing").name == "hashing-512"
    assert load_embedder("hashing-64-c24").name == "hashing-64-c24"
    assert load_embedder("minilm").name == "all-MiniLM-L6-v2"
    with pytest.raises(ValueError, match="unknown embedder"):
        load_embedder("bert")


def test_import_is_cheap() -> None:
    code = "import sys, codefalcon.memory; print(sorted({'faiss', 'sentence_transformers', 'torch'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.slow
def test_minilm_offline() -> None:
    assert (Path(minilm_path()) / "model.safetensors").is_file()  # shipped in the wheel
    emb = MiniLMEmbedder()
    x = emb.embed(["Add up the numbers in the list.", "Sum a list of integers.", "Reverse a string."])
    assert x.shape == (3, 384) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5, rtol=0)
    assert x[0] @ x[1] > x[0] @ x[2]
