"""Benchmark of the memory: retrieval latency, MiniLM throughput and retrieval relevance.

    python benchmarks/bench_memory.py [--large 1000000] [--dim 384] [--skip-minilm]

Prints one table:

- search latency (ms/query, one query at a time, as the trainer asks) of a flat inner-product
  index at 10k and ``--large`` stored vectors (random unit vectors: latency does not depend on
  content), and of an IVF index at ``--large`` with its recall@10 against the exact answer;
- the whole `LongTermMemory.retrieve` path (FAISS + SQLite lookups) over 10k stored tasks;
- MiniLM embedding throughput (texts/s, batch 64, synth task prompts);
- relevance: held-out instances of procedural tasks (`codefalcon.tasks.synth`, train and test
  share templates, never an instance); the rate at which the top retrieved example has the
  query's template (strict) and its family (list / words / string / arithmetic / dict), for the
  hashing embedder and MiniLM.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import numpy as np

from codefalcon.memory import Attempt, HashingEmbedder, LongTermMemory, MiniLMEmbedder
from codefalcon.memory.embed import Embedder, normalize_rows
from codefalcon.tasks.synth import generate_splits

N_QUERIES = 200


def random_unit(n: int, dim: int, seed: int, chunk: int = 100_000) -> np.ndarray:
    """``n`` random unit rows, float32, generated in chunks so float64 never holds them all."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, chunk):
        out[start : start + chunk] = normalize_rows(rng.standard_normal((min(chunk, n - start), dim)))
    return out


def per_query_ms(index, queries: np.ndarray, k: int = 10) -> tuple[float, np.ndarray]:
    """Mean ms per single-vector search, and the ids found (N, k)."""
    found = np.empty((len(queries), k), dtype=np.int64)
    start = time.perf_counter()
    for i, q in enumerate(queries):
        found[i] = index.search(q[None, :], k)[1][0]
    return (time.perf_counter() - start) * 1000 / len(queries), found


def latency_rows(large: int, dim: int) -> list[tuple[str, str]]:
    import faiss

    rows = []
    base = random_unit(large, dim, seed=0)
    # Queries near stored vectors (cosine about 0.9 to one of them), as a similar task would be.
    queries = normalize_rows(base[:N_QUERIES] + 0.5 * random_unit(N_QUERIES, dim, seed=1))
    exact_large = None
    for n in (10_000, large):
        index = faiss.IndexFlatIP(dim)
        index.add(base[:n])
        ms, found = per_query_ms(index, queries)
        rows.append((f"flat search, {n:,} x {dim} (ms/query)", f"{ms:.2f}"))
        exact_large = found
        del index
    nlist = 1024
    quantizer = faiss.IndexFlatIP(dim)
    ivf = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    start = time.perf_counter()
    ivf.train(base[np.random.default_rng(2).choice(large, min(large, 40 * nlist), replace=False)])
    ivf.add(base)
    build = time.perf_counter() - start
    for nprobe in (8, 32):
        ivf.nprobe = nprobe
        ms, found = per_query_ms(ivf, queries)
        pairs = list(zip(found, exact_large, strict=True))
        recall10 = np.mean([len(set(a) & set(b)) / len(a) for a, b in pairs])
        recall1 = np.mean([a[0] == b[0] for a, b in pairs])
        name = f"IVF{nlist} nprobe={nprobe}, {large:,} x {dim}"
        rows.append((f"{name} (ms/query, recall@1, recall@10)", f"{ms:.2f}, {recall1:.3f}, {recall10:.3f}"))
    rows.append((f"IVF{nlist} build, {large:,} x {dim} (s)", f"{build:.1f}"))
    return rows


def solved(task_id: str, text: str, split: str, program: str) -> Attempt:
    return Attempt(task_id, text, split, "", program, "passed", ["passed"])


def store_row() -> tuple[str, str]:
    """Mean ms of `LongTermMemory.retrieve` by free text over 10k tasks (hashing, flat)."""
    rng = random.Random(0)
    vocab = [f"w{i}" for i in range(2000)]
    texts = [" ".join(rng.choices(vocab, k=30)) for _ in range(10_000)]
    with tempfile.TemporaryDirectory() as tmp, LongTermMemory(Path(tmp) / "m.db", HashingEmbedder()) as mem:
        mem.add(solved(f"t/{i}", t, "train", "pass") for i, t in enumerate(texts))
        start = time.perf_counter()
        for t in texts[:N_QUERIES]:
            mem.retrieve(t, k=3)
        ms = (time.perf_counter() - start) * 1000 / N_QUERIES
    return "LongTermMemory.retrieve, 10,000 tasks, hashing (ms/query)", f"{ms:.2f}"


def relevance(embedder: Embedder, train, test) -> tuple[float, float, float]:
    """(template top-1 rate, family top-1 rate, seconds to embed and store) over held-out queries."""
    by_id = {t.task_id: t for t in train}
    templates = {t.metadata["template"] for t in train}
    queries = [q for q in test if q.metadata["template"] in templates]
    with tempfile.TemporaryDirectory() as tmp, LongTermMemory(Path(tmp) / "m.db", embedder) as mem:
        start = time.perf_counter()
        mem.add(solved(t.task_id, t.prompt, t.split, t.solutions[0]) for t in train + test)
        seconds = time.perf_counter() - start
        tops = [by_id[mem.retrieve(q, k=1).examples[0].task_id] for q in queries]
    pairs = list(zip(tops, queries, strict=True))
    same_t = np.mean([a.metadata["template"] == q.metadata["template"] for a, q in pairs])
    same_f = np.mean([a.metadata["family"] == q.metadata["family"] for a, q in pairs])
    return float(same_t), float(same_f), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", type=int, default=1_000_000, help="vectors in the large index")
    parser.add_argument("--dim", type=int, default=384, help="vector size (MiniLM: 384)")
    parser.add_argument("--n-train", type=int, default=600, help="procedural tasks stored")
    parser.add_argument("--n-test", type=int, default=150, help="held-out procedural tasks queried")
    parser.add_argument("--skip-minilm", action="store_true", help="hashing embedder only")
    args = parser.parse_args()

    import faiss

    # One query at a time: OpenMP threads only add hand-off cost, and on a busy machine they
    # spin-wait for cores (measured 23 ms instead of ~1 ms per 10k-vector query with 2 threads).
    faiss.omp_set_num_threads(1)
    rows = latency_rows(args.large, args.dim)
    rows.append(store_row())
    levels = ["easy", "medium"]
    train, test = generate_splits(args.n_train, args.n_test, seed=0, holdout="instance", difficulty=levels)
    n_q = sum(q.metadata["template"] in {t.metadata["template"] for t in train} for q in test)
    embedders: list[Embedder] = [HashingEmbedder()]
    if not args.skip_minilm:
        minilm = MiniLMEmbedder()
        texts = [t.prompt for t in train[:512]]
        minilm.embed(texts[:64])  # load the model and warm up
        start = time.perf_counter()
        minilm.embed(texts)
        rate = len(texts) / (time.perf_counter() - start)
        rows.append(("MiniLM embedding, batch 64 (texts/s)", f"{rate:.0f}"))
        embedders.append(minilm)
    for emb in embedders:
        template, family, _ = relevance(emb, train, test)
        name = f"top-1 same template / family, {emb.name} ({n_q} queries)"
        rows.append((name, f"{template:.3f} / {family:.3f}"))

    width = max(len(name) for name, _ in rows)
    print(f"{'measure'.ljust(width)} | value")
    print(f"{'-' * width}-|------")
    for name, value in rows:
        print(f"{name.ljust(width)} | {value}")


if __name__ == "__main__":
    main()
