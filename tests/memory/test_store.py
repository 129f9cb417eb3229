"""Long-term store: round trips, crash safety, index rebuilds, retrieval rules."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from codefalcon.memory import Attempt, HashingEmbedder, LongTermMemory, StoreError
from codefalcon.memory.store import APPLICATION_ID, check_store


def attempt(task_id: str, text: str, verdict: str = "passed", split: str = "train", **kw) -> Attempt:
    program = kw.pop("program", f"def f():  # {task_id}\n    return 1\n")
    return Attempt(task_id, text, split, "prompt", program, verdict, [verdict], **kw)


TEXTS = {
    "sum/1": "Add up the numbers in the list. Return the number.",
    "sum/2": "Add up all numbers of the list and return the total.",
    "upper/1": "Convert the string to upper case. Return the string.",
    "upper/2": "Make every letter of the string upper case.",
    "vowels/1": "Count the vowels in the string.",
}


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "mem.db"
    with LongTermMemory(path, HashingEmbedder(256)) as mem:
        mem.add([attempt(tid, text) for tid, text in TEXTS.items()])
        mem.add([attempt("upper/1", TEXTS["upper/1"], "runtime_error", errors=["NameError: name 'x'"])])
    return path


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    a = Attempt(
        "t/1", "text", "train", "the prompt", "print(1)", "wrong_answer", ["passed", "wrong_answer"],
        ["wrong_answer"], {"unit": 0.5, "judge": None}, {"clarity": 7.0}, 12, 1700000000.5,
    )  # fmt: skip
    with LongTermMemory(tmp_path / "m.db") as mem:
        mem.add([a])
    with LongTermMemory(tmp_path / "m.db") as mem:
        assert list(mem.attempts()) == [a]
        assert mem.embedder.name == "hashing-512"  # the default, recorded in the store


def test_split_conflict_stores_nothing(store: Path) -> None:
    with LongTermMemory(store) as mem:
        n = len(mem)
        with pytest.raises(ValueError, match="split"):
            mem.add([attempt("new/1", "new"), attempt("sum/1", TEXTS["sum/1"], split="test")])
        assert len(mem) == n and not mem.has_task("new/1")


def test_retrieve_excludes_query_and_test_tasks(store: Path) -> None:
    with LongTermMemory(store) as mem:
        mem.add([attempt("sum/test", "Add up the numbers in the list. Return the number.", split="test")])
        found = mem.retrieve("sum/1", k=4)
        ids = [e.task_id for e in found.examples]
        assert ids[0] == "sum/2"
        assert "sum/1" not in ids and "sum/test" not in ids
        assert all(tid not in ("sum/1", "sum/test") for tid, _ in found.neighbours)
        with_test = mem.retrieve("sum/1", k=4, include_test=True)
        assert with_test.examples[0].task_id == "sum/test"  # identical text, allowed only when asked


def test_frequent_errors_come_from_similar_tasks(store: Path) -> None:
    with LongTermMemory(store) as mem:
        found = mem.retrieve("Make the string upper case.", k=1, n_errors=2)
        assert found.examples[0].task_id in ("upper/1", "upper/2")
        assert found.errors[0].error == "NameError: name 'x'"
        assert (found.errors[0].count, found.errors[0].n_tasks) == (1, 1)


def test_best_passing_program_is_returned(tmp_path: Path) -> None:
    with LongTermMemory(tmp_path / "m.db") as mem:
        mem.add([
            attempt("a", "sort the list", program="worse", rewards={"unit": 1.0}),
            attempt("a", "sort the list", program="best", rewards={"unit": 1.0, "style": 0.5}),
            attempt("a", "sort the list", "wrong_answer", program="failing", rewards={"unit": 9.0}),
            attempt("b", "sort the list please", program="x"),
        ])  # fmt: skip
        assert mem.retrieve("b").examples[0].program == "best"


def test_crash_mid_write_loses_no_committed_attempt(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    child = textwrap.dedent(f"""
        import sys
        from codefalcon.memory import Attempt, HashingEmbedder, LongTermMemory
        mem = LongTermMemory({str(db)!r}, HashingEmbedder(64))
        i = 0
        while True:
            batch = [Attempt(f"t/{{i}}", f"task {{i}} " + "word " * 50, "train", "p" * 2000,
                             "x" * 5000, "passed", ["passed"]) for _ in range(3)]
            ids = mem.add(batch)
            print(*ids, flush=True)
            i += 1
    """)
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True)
    committed: list[int] = []
    assert proc.stdout is not None
    while len(committed) < 60:
        line = proc.stdout.readline()
        assert line, "child died before writing"
        committed += [int(x) for x in line.split()]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = {r[0] for r in conn.execute("SELECT id FROM attempts")}
    assert set(committed) <= stored
    assert len(stored) <= len(committed) + 3  # at most the batch in flight also committed
    with LongTermMemory(db) as mem:  # the index was never saved: rebuilt from SQLite
        assert mem.index_status.startswith("rebuilt")
        assert mem.stats()["index"]["vectors"] == mem.n_tasks


def test_missing_index_is_rebuilt(store: Path) -> None:
    Path(f"{store}.faiss").unlink()
    with LongTermMemory(store) as mem:
        assert mem.index_status == "rebuilt: missing"
        assert mem.retrieve("sum/1").examples[0].task_id == "sum/2"
    with LongTermMemory(store) as mem:
        assert mem.index_status == "loaded"


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage"])
def test_corrupt_index_is_rebuilt(store: Path, damage: str) -> None:
    path = Path(f"{store}.faiss")
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
    elif damage == "truncate":
        data = data[: len(data) // 3]
    else:
        data = bytearray(b"not an index")
    path.write_bytes(bytes(data))
    with LongTermMemory(store) as mem:
        assert mem.index_status.startswith("rebuilt: corrupt")
        assert mem.retrieve("sum/1").examples[0].task_id == "sum/2"


def test_index_without_sidecar_is_rebuilt(store: Path) -> None:
    Path(f"{store}.faiss").write_bytes(b"garbage")
    Path(f"{store}.faiss.json").unlink()
    with LongTermMemory(store) as mem:
        assert mem.index_status == "rebuilt: sidecar missing"


def test_stale_index_is_rebuilt(store: Path, tmp_path: Path) -> None:
    for suffix in (".faiss", ".faiss.json"):
        shutil.copy(f"{store}{suffix}", tmp_path / f"old{suffix}")
    with LongTermMemory(store) as mem:
        mem.add([attempt("new/1", "Reverse the list.")])
    for suffix in (".faiss", ".faiss.json"):  # an index saved before the last write
        shutil.copy(tmp_path / f"old{suffix}", f"{store}{suffix}")
    with LongTermMemory(store) as mem:
        assert mem.index_status.startswith("rebuilt: stale (n_vectors")
        assert mem.retrieve("Reverse the list!").examples[0].task_id == "new/1"


def test_changing_embedder_reembeds(store: Path) -> None:
    with LongTermMemory(store, HashingEmbedder(128)) as mem:
        assert mem.index_status.startswith("rebuilt: stale (embedder")
        assert mem.retrieve("sum/1").examples[0].task_id == "sum/2"
    with LongTermMemory(store) as mem:
        assert (mem.embedder.name, mem.index_status) == ("hashing-128", "loaded")


def test_reader_sees_tasks_written_by_another_connection(store: Path) -> None:
    with LongTermMemory(store) as reader, LongTermMemory(store) as writer:
        writer.add([attempt("new/1", "Reverse the list.")])
        assert reader.retrieve("Reverse the list!").examples[0].task_id == "new/1"


def test_hnsw_index_kind(store: Path) -> None:
    with LongTermMemory(store, index_kind="hnsw") as mem:
        assert mem.index_status.startswith("rebuilt: stale (kind")
        assert mem.retrieve("sum/1").examples[0].task_id == "sum/2"


def test_stats(store: Path) -> None:
    with LongTermMemory(store) as mem:
        s = mem.stats()
    assert (s["n_attempts"], s["n_tasks"]) == (6, 5)
    assert s["attempts_per_verdict"] == {"passed": 5, "runtime_error": 1}
    assert s["attempts_per_split_and_verdict"] == {"train": {"passed": 5, "runtime_error": 1}}
    assert s["tasks_per_split"] == {"train": 5}


def test_forget_after_restores_the_memory_of_a_step(tmp_path) -> None:
    from codefalcon.memory import Attempt, HashingEmbedder, LongTermMemory

    def attempt(task_id: str, step: int) -> Attempt:
        return Attempt(
            task_id, f"text of {task_id}", "train", "p", "def f(): pass\n", "passed", model_step=step
        )

    with LongTermMemory(tmp_path / "m.db", HashingEmbedder(64)) as memory:
        memory.add([attempt("a", 1), attempt("b", 2), attempt("a", 3), attempt("c", 3)])
        assert memory.forget_after(2) == 2
        assert [a.model_step for a in memory.attempts()] == [1, 2]
        assert not memory.has_task("c") and memory.has_task("a")
        assert [n[0] for n in memory.retrieve("a", k=5).neighbours] == ["b"]  # "c" is gone


def test_foreign_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs.db"
    with sqlite3.connect(theirs) as db:
        db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    db.close()
    before = theirs.read_bytes()
    with pytest.raises(StoreError, match=r"theirs\.db: not a codefalcon memory store .*users"):
        LongTermMemory(theirs)
    with pytest.raises(StoreError, match=r"theirs\.db"):
        check_store(theirs)
    assert theirs.read_bytes() == before  # no tables of ours, journal mode unchanged
    assert sorted(p.name for p in tmp_path.iterdir()) == ["theirs.db"]  # and no index beside it


def test_corrupt_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "mem.db"
    path.write_bytes(b"\x89PNG\r\n" + bytes(range(256)) * 8)
    before = path.read_bytes()
    with pytest.raises(StoreError, match=r"mem\.db: not a codefalcon memory store .*not an SQLite"):
        LongTermMemory(path)
    assert path.read_bytes() == before


def test_new_stores_are_marked_and_old_ones_adopted(tmp_path: Path, store: Path) -> None:
    with sqlite3.connect(store) as db:
        assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        db.execute("PRAGMA application_id = 0")  # as written before the id existed
    db.close()
    check_store(store)  # recognised by its tables
    with LongTermMemory(store) as mem:
        assert mem.n_tasks == len(TEXTS)
    with sqlite3.connect(store) as db:
        assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    db.close()


def test_opening_without_create_never_makes_a_file(tmp_path: Path) -> None:
    missing = tmp_path / "sub" / "mem.db"
    with pytest.raises(FileNotFoundError, match="memory store not found"):
        LongTermMemory(missing, create=False)
    with pytest.raises(FileNotFoundError):
        check_store(missing)
    empty = tmp_path / "empty.db"
    empty.touch()
    with pytest.raises(StoreError, match="empty database"):
        LongTermMemory(empty, create=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db"]
    with LongTermMemory(empty) as mem:  # an empty file is a fine place for a new store
        assert mem.n_tasks == 0
