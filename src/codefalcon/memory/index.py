"""The FAISS index of task vectors, saved beside the SQLite file with a sidecar that vouches for it.

The index is a cache: SQLite holds every task's text and vector, so a missing, corrupt or stale
index file is rebuilt, never trusted. The sidecar (``<index>.json``) records what the index holds:
the embedder name and dimension, the index kind, the number of vectors, the largest task row id,
and the SHA-256 and size of the index file. `load_index` returns None with a reason unless all of
them match the database and the file. Both files are written to a temporary name, fsynced and
renamed, index first: a crash leaves either the old pair or a new index whose hash the old sidecar
rejects.

FAISS is imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

IndexKind = Literal["flat", "hnsw"]
FORMAT = 1
HNSW_M = 32  # graph degree of IndexHNSWFlat
HNSW_EF_SEARCH = 128  # candidates explored per HNSW query (recall vs speed)


@dataclass(frozen=True)
class IndexMeta:
    """What an index holds; compared field by field with what the database says it should hold."""

    embedder: str
    dim: int
    kind: str
    n_vectors: int
    max_id: int


def new_index(dim: int, kind: IndexKind = "flat") -> Any:
    """An empty inner-product index whose ids are task row ids.

    ``flat``: exact search (``IndexFlatIP``), about 1 ms per query per 10k vectors of 384 dims
    on one core. ``hnsw``: approximate (``IndexHNSWFlat``, M=32), for stores past ~1M tasks.
    """
    import faiss

    if kind == "flat":
        inner = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        inner = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efSearch = HNSW_EF_SEARCH
    else:
        raise ValueError(f"index kind must be 'flat' or 'hnsw', got {kind!r}")
    return faiss.IndexIDMap2(inner)


def add_vectors(index: Any, ids: np.ndarray, vectors: np.ndarray) -> None:
    """Add ``vectors`` (N, dim) float32 under ``ids`` (N,) int64."""
    if len(ids):
        index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))


def search(index: Any, vector: np.ndarray, n: int) -> list[tuple[int, float]]:
    """The ``n`` nearest ids to one ``vector`` (dim,), as (id, inner product), best first."""
    if index.ntotal == 0 or n <= 0:
        return []
    sims, ids = index.search(np.asarray(vector, dtype=np.float32).reshape(1, -1), min(n, index.ntotal))
    return [(int(i), float(s)) for i, s in zip(ids[0], sims[0], strict=True) if i >= 0]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def _replace_atomically(path: Path, write: Any) -> None:
    """Call ``write(tmp_path)``, fsync, then rename over ``path``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def save_index(index: Any, path: Path, meta: IndexMeta) -> None:
    """Write the index, then its sidecar (with the index file's hash), each atomically."""
    import faiss

    _replace_atomically(path, lambda tmp: faiss.write_index(index, tmp))
    record = {"format": FORMAT, **asdict(meta), "size": path.stat().st_size, "sha256": _sha256(path)}
    _replace_atomically(sidecar_path(path), lambda tmp: Path(tmp).write_text(json.dumps(record, indent=1)))


def load_index(path: Path, expected: IndexMeta) -> tuple[Any | None, str]:
    """(index, "loaded") if the file and sidecar match ``expected``, else (None, why not)."""
    import faiss

    side = sidecar_path(path)
    if not path.is_file():
        return None, "missing"
    if not side.is_file():
        return None, "sidecar missing"
    try:
        record = json.loads(side.read_text())
    except (OSError, ValueError) as e:
        return None, f"sidecar unreadable ({e})"
    if record.get("format") != FORMAT:
        return None, f"sidecar format {record.get('format')!r}, expected {FORMAT}"
    for key, want in asdict(expected).items():
        if record.get(key) != want:
            return None, f"stale ({key}: index has {record.get(key)!r}, database has {want!r})"
    if path.stat().st_size != record.get("size") or _sha256(path) != record.get("sha256"):
        return None, "corrupt (file does not match its sidecar hash)"
    try:
        index = faiss.read_index(str(path))
    except RuntimeError as e:
        return None, f"corrupt ({str(e).splitlines()[0][:200]})"
    if index.ntotal != expected.n_vectors or index.d != expected.dim:
        return None, f"stale (file holds {index.ntotal} x {index.d})"
    return index, "loaded"
