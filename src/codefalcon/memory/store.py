"""Long-term memory: every attempt in SQLite, one vector per task in a FAISS index beside it.

SQLite is the record of truth. It runs in WAL mode with ``synchronous=FULL`` and each `add` is
one transaction, so a crash (even SIGKILL mid-write) loses at most the batch being written, never
a committed one, and never corrupts the file. The FAISS index (``<db>.faiss``) is a cache of the
task vectors stored in SQLite: it is checked on open against its sidecar and rebuilt from the
stored vectors (re-embedding only when the embedder changed) if missing, corrupt or stale.

Why one vector per task rather than per attempt: retrieval answers "which *other tasks* are like
this one", and all attempts of a task share its text. Per-attempt vectors would let a task with 100
samples crowd the top-k with copies of itself, and cost 100x the index size. The best program
and frequent errors of each retrieved task come from SQLite.

One writer at a time: several processes may read, and a reader picks up tasks that a writer
committed since it opened (`LongTermMemory.sync`).

A store is marked as ours with ``PRAGMA application_id`` when it is created. Opening any other
file (not SQLite, or someone else's database) raises `StoreError` before anything is written to
it: adding our tables to another program's database, or switching it to WAL, would change a
file we do not own.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from codefalcon.memory.embed import Embedder, HashingEmbedder, load_embedder
from codefalcon.memory.index import IndexKind, IndexMeta, add_vectors, load_index, new_index, save_index
from codefalcon.memory.record import NO_FILTER, Attempt, ExampleFilter, Retrieval
from codefalcon.memory.retrieve import ATTEMPT_COLUMNS, attempt_from_row, retrieve
from codefalcon.tasks.record import Task

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id TEXT NOT NULL UNIQUE,
    text TEXT NOT NULL,
    split TEXT NOT NULL,
    embedder TEXT NOT NULL,
    vector BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task INTEGER NOT NULL REFERENCES tasks(id),
    prompt TEXT NOT NULL,
    program TEXT NOT NULL,
    verdict TEXT NOT NULL,
    passed INTEGER NOT NULL,
    test_verdicts TEXT NOT NULL,
    errors TEXT NOT NULL,
    rewards TEXT NOT NULL,
    judge_scores TEXT NOT NULL,
    model_step INTEGER,
    time REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS attempts_by_task ON attempts (task, passed);
"""
APPLICATION_ID = 0x43464D45  # "CFME": codefalcon memory; stored in the SQLite header
SCHEMA_VERSION = 1  # PRAGMA user_version of the schema above
OUR_TABLES = frozenset({"meta", "tasks", "attempts"})


class StoreError(ValueError):
    """A file that is not a codefalcon memory store; the message names the file."""


def _check_ours(db: sqlite3.Connection, path: Path) -> bool:
    """True if ``db`` is our store, False if it is empty (a new store); else `StoreError`.

    Reading the header is what fails on a file that is not SQLite at all. Stores written before
    the application id existed are recognised by having exactly our tables.
    """
    try:
        app_id = db.execute("PRAGMA application_id").fetchone()[0]
        tables = {
            name
            for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if not name.startswith("sqlite_")
        }
    except sqlite3.DatabaseError as e:
        raise StoreError(f"{path}: not a codefalcon memory store (not an SQLite database: {e})") from None
    if app_id == APPLICATION_ID or (app_id == 0 and tables == OUR_TABLES):
        return True
    if app_id == 0 and not tables:
        return False
    what = f"application id {app_id:#x}" if app_id else "tables " + ", ".join(sorted(tables))
    raise StoreError(f"{path}: not a codefalcon memory store (another program's SQLite database: {what})")


def _not_found(path: Path) -> FileNotFoundError:
    return FileNotFoundError(f"memory store not found: {path} (build one with codefalcon memory add)")


def check_store(path: str | Path) -> None:
    """Refuse, before any work, a path that is not an existing store (FileNotFoundError or
    `StoreError`); opened read-only, so nothing is written to whatever it is."""
    path = Path(path)
    if not path.is_file():
        raise _not_found(path)
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        if not _check_ours(db, path):
            raise StoreError(f"{path}: not a codefalcon memory store (an empty database)")
    finally:
        db.close()


class LongTermMemory:
    """The attempt store and its task index. Use as a context manager, or call `close`.

    ``path``: the SQLite file (created if missing, unless ``create`` is False: then a missing
    file is a FileNotFoundError); the index is ``<path>.faiss``. A file that is not our store
    raises `StoreError` and is left as it was.
    ``embedder``: None reuses the embedder the store was built with (``hashing-512`` for a new
    store); a different one re-embeds every task once. ``index_kind``: ``flat`` (exact) or
    ``hnsw`` (approximate, for very large stores).
    """

    def __init__(
        self,
        path: str | Path,
        embedder: Embedder | None = None,
        index_kind: IndexKind = "flat",
        *,
        create: bool = True,
    ) -> None:
        self.path = Path(path)
        self.index_path = self.path.with_name(self.path.name + ".faiss")
        self.index_kind = index_kind
        if not create and not self.path.is_file():
            raise _not_found(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
        try:
            exists = _check_ours(self._db, self.path)
        except StoreError:
            self._db.close()
            raise
        if not exists and not create:
            self._db.close()
            raise StoreError(f"{self.path}: not a codefalcon memory store (an empty database)")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # durable at commit, not only crash-safe
        self._db.executescript(SCHEMA)
        if self._db.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:  # new or older store
            self._db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        stored = self._meta("embedder")
        if embedder is None:
            embedder = load_embedder(stored) if stored else HashingEmbedder()
        self.embedder = embedder
        self._index: Any = None
        self._max_id = 0
        self._dirty = False
        self.index_status = self._open_index(stored)

    # ---- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> LongTermMemory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Save the index if it changed, then close the database."""
        if self._db is not None:
            self.save_index()
            self._db.close()
            self._db = None  # type: ignore[assignment]

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _expected_meta(self) -> IndexMeta:
        n, max_id = self._db.execute("SELECT count(*), coalesce(max(id), 0) FROM tasks").fetchone()
        return IndexMeta(self.embedder.name, self.embedder.dim, self.index_kind, n, max_id)

    # ---- the index ---------------------------------------------------------------------------

    def _open_index(self, stored_embedder: str | None) -> str:
        """Load the saved index, or rebuild it; returns what happened (`index_status`)."""
        if stored_embedder not in (None, self.embedder.name):
            self._reembed()
        expected = self._expected_meta()
        index, why = load_index(self.index_path, expected)
        if index is not None:
            self._index, self._max_id = index, expected.max_id
            return "loaded"
        self.rebuild_index()
        return f"rebuilt: {why}"

    def _reembed(self) -> None:
        """Embed every task again with the current embedder (after a change of embedder)."""
        rows = self._db.execute("SELECT id, text FROM tasks ORDER BY id").fetchall()
        with self._transaction():
            for start in range(0, len(rows), 1024):
                chunk = rows[start : start + 1024]
                vectors = self.embedder.embed([text for _, text in chunk])
                self._db.executemany(
                    "UPDATE tasks SET embedder = ?, vector = ? WHERE id = ?",
                    [(self.embedder.name, v.tobytes(), i) for (i, _), v in zip(chunk, vectors, strict=True)],
                )
            self._set_meta("embedder", self.embedder.name)

    def rebuild_index(self) -> None:
        """A fresh index from the vectors stored in SQLite, saved at once."""
        self._index, self._max_id = new_index(self.embedder.dim, self.index_kind), 0
        self.sync()
        self._dirty = True
        self.save_index()

    def sync(self) -> int:
        """Add to the index the tasks committed since it was last brought up to date (any writer)."""
        rows = self._db.execute(
            "SELECT id, vector FROM tasks WHERE id > ? ORDER BY id", (self._max_id,)
        ).fetchall()
        if rows:
            ids = np.array([i for i, _ in rows], dtype=np.int64)
            vectors = np.stack([np.frombuffer(v, dtype=np.float32) for _, v in rows])
            add_vectors(self._index, ids, vectors)
            self._max_id = int(ids[-1])
            self._dirty = True
        return len(rows)

    def save_index(self) -> None:
        """Persist the index and its sidecar if anything changed since the last save."""
        if self._dirty and self._index is not None:
            self.sync()
            save_index(self._index, self.index_path, self._expected_meta())
            self._dirty = False

    # ---- writing -------------------------------------------------------------------------------

    def _transaction(self) -> Any:
        db = self._db

        class _Tx:
            def __enter__(self) -> None:
                db.execute("BEGIN IMMEDIATE")

            def __exit__(self, exc_type: object, *rest: object) -> None:
                db.execute("ROLLBACK" if exc_type else "COMMIT")

        return _Tx()

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def add(self, attempts: Iterable[Attempt]) -> list[int]:
        """Store ``attempts`` in one transaction; returns their row ids.

        New tasks are embedded first (outside the transaction) and stored with their vector. A
        task keeps its first text; an attempt naming a known task under another split is an
        error (it would leak a test task into retrieval), and nothing of the batch is stored.
        """
        attempts = list(attempts)
        new: dict[str, Attempt] = {}
        for a in attempts:
            if a.task_id not in new and self._task_row(a.task_id) is None:
                new[a.task_id] = a
        vectors = self.embedder.embed([a.task_text for a in new.values()]) if new else None
        ids: list[int] = []
        with self._transaction():
            self._set_meta("embedder", self.embedder.name)
            for a, v in zip(new.values(), vectors if vectors is not None else [], strict=True):
                self._db.execute(
                    "INSERT INTO tasks (task_id, text, split, embedder, vector) VALUES (?, ?, ?, ?, ?)",
                    (a.task_id, a.task_text, a.split, self.embedder.name, v.tobytes()),
                )
            for a in attempts:
                task_row, split = self._task_row(a.task_id) or (0, "")
                if split != a.split:
                    raise ValueError(
                        f"task {a.task_id!r} is stored with split {split!r}, attempt says {a.split!r}"
                    )
                ids.append(self._insert_attempt(task_row, a))
        self.sync()
        return ids

    def _task_row(self, task_id: str) -> tuple[int, str] | None:
        return self._db.execute("SELECT id, split FROM tasks WHERE task_id = ?", (task_id,)).fetchone()

    def _insert_attempt(self, task_row: int, a: Attempt) -> int:
        cur = self._db.execute(
            "INSERT INTO attempts (task, prompt, program, verdict, passed, test_verdicts, errors, "
            "rewards, judge_scores, model_step, time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                task_row, a.prompt, a.program, a.verdict.value, int(a.passed),
                json.dumps([v.value for v in a.test_verdicts]), json.dumps(list(a.errors)),
                json.dumps(a.rewards), json.dumps(a.judge_scores), a.model_step, a.time,
            ),
        )  # fmt: skip
        return int(cur.lastrowid or 0)

    # ---- reading -------------------------------------------------------------------------------

    def attempts(self, task_id: str | None = None) -> Iterator[Attempt]:
        """Stored attempts in insertion order, all or one task's."""
        sql = f"SELECT {ATTEMPT_COLUMNS} FROM attempts a JOIN tasks t ON a.task = t.id"
        args: tuple[Any, ...] = ()
        if task_id is not None:
            sql, args = sql + " WHERE t.task_id = ?", (task_id,)
        for row in self._db.execute(sql + " ORDER BY a.id", args):
            yield attempt_from_row(row)

    def __len__(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM attempts").fetchone()[0])

    @property
    def n_tasks(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM tasks").fetchone()[0])

    def forget_after(self, model_step: int) -> int:
        """Delete the attempts of steps after ``model_step``, and tasks left with no attempt.

        A training run resumed from its step-``s`` checkpoint calls this so that its memory is the
        memory it had at step ``s``: the steps it repeats are written again, not twice. Returns
        the number of attempts deleted; the index is rebuilt when tasks went.
        """
        with self._transaction():
            gone = self._db.execute("DELETE FROM attempts WHERE model_step > ?", (model_step,)).rowcount
            orphans = self._db.execute(
                "DELETE FROM tasks WHERE id NOT IN (SELECT DISTINCT task FROM attempts)"
            ).rowcount
        if orphans:
            self.rebuild_index()
        return gone

    def has_task(self, task_id: str) -> bool:
        return self._task_row(task_id) is not None

    def stats(self) -> dict[str, Any]:
        """Counts of tasks and attempts per split, and of attempts per verdict and split."""
        db = self._db
        by = db.execute(
            "SELECT t.split, a.verdict, count(*) FROM attempts a JOIN tasks t ON a.task = t.id "
            "GROUP BY t.split, a.verdict ORDER BY t.split, a.verdict"
        ).fetchall()
        per_verdict: Counter[str] = Counter()
        per_split: dict[str, dict[str, int]] = {}
        for split, verdict, n in by:
            per_verdict[verdict] += n
            per_split.setdefault(split, {})[verdict] = n
        tasks = dict(db.execute("SELECT split, count(*) FROM tasks GROUP BY split ORDER BY split"))
        return {
            "n_attempts": len(self),
            "n_tasks": self.n_tasks,
            "tasks_per_split": tasks,
            "attempts_per_verdict": dict(sorted(per_verdict.items())),
            "attempts_per_split_and_verdict": per_split,
            "embedder": self.embedder.name,
            "index": {
                "kind": self.index_kind,
                "vectors": int(self._index.ntotal),
                "status": self.index_status,
            },
        }

    # ---- retrieval ----------------------------------------------------------------------------

    def query_vector(self, query: str | Task) -> tuple[np.ndarray, str | None]:
        """(vector, task id to exclude) for a `Task`, a stored task id, or free text."""
        if isinstance(query, Task):
            return self.embedder.embed([query.prompt])[0], query.task_id
        row = self._db.execute("SELECT vector FROM tasks WHERE task_id = ?", (query,)).fetchone()
        if row is not None:
            return np.frombuffer(row[0], dtype=np.float32), query
        return self.embedder.embed([query])[0], None

    def retrieve(
        self,
        query: str | Task,
        k: int = 3,
        *,
        n_errors: int = 3,
        error_tasks: int = 10,
        include_test: bool = False,
        exclude: Sequence[str] = (),
        rules: ExampleFilter = NO_FILTER,
    ) -> Retrieval:
        """Best passing programs of the ``k`` most similar other tasks, and frequent errors.

        ``query``: a `Task` (its prompt is embedded), the id of a stored task, or free text.
        The query task (and any id in ``exclude``) is never returned, nor are ``test``-split
        tasks unless ``include_test``. Examples come from the nearest eligible tasks that have a
        passing attempt, the best one each (`best_key`: passed, highest total reward, highest
        mean judge score, shortest, newest). Errors are counted once per failed attempt over the
        ``error_tasks`` nearest eligible tasks, most frequent first. ``rules`` drops near-copies
        of the query and of each other from the examples (`ExampleFilter`; off by default).
        """
        self.sync()
        vector, own_id = self.query_vector(query)
        skip = set(exclude) | ({own_id} if own_id else set())
        return retrieve(self._db, self._index, vector, k, n_errors, error_tasks, include_test, skip, rules)
