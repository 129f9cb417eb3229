"""`codefalcon memory add|search|stats|export`: FALCON's long-term store of attempts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from codefalcon.cli.checks import at_least, check_store_option, input_file, load_tasks, output_file
from codefalcon.cli.common import (
    Benchmark,
    MaxExampleSimilarityOption,
    MaxSimilarityOption,
    fail,
    print_result,
)

app = typer.Typer(
    help="FALCON's long-term memory: attempts in SQLite, task embeddings in FAISS.", no_args_is_help=True
)

StoreOption = Annotated[Path, typer.Option(help="The store's SQLite file (its FAISS index sits beside it).")]
EmbedderOption = Annotated[
    str | None, typer.Option(help="hashing (no dependencies) or minilm \\[default: the store's own].")
]


@app.command("add")
def add(
    store: StoreOption,
    samples: Annotated[
        Path | None, typer.Option(help="Samples JSONL that `codefalcon evaluate` ran.")
    ] = None,
    results: Annotated[
        Path | None, typer.Option(help="Their results JSONL from `codefalcon evaluate`.")
    ] = None,
    benchmark: Annotated[
        Benchmark | None, typer.Option(help="Benchmark of the samples (for task texts).")
    ] = None,
    data: Annotated[Path | None, typer.Option(help="Benchmark data (not needed for HumanEval).")] = None,
    split: Annotated[str | None, typer.Option(help="Split to load.")] = None,
    attempts: Annotated[Path | None, typer.Option(help="Or: attempts JSONL from `memory export`.")] = None,
    embedder: EmbedderOption = None,
    model_step: Annotated[int | None, typer.Option(help="Training step that produced the samples.")] = None,
) -> None:
    """Store evaluated samples (or exported attempts) with their verdicts and errors."""
    from codefalcon.memory import add_main

    if attempts is None and (samples is None or results is None or benchmark is None):
        raise fail("give --samples, --results and --benchmark (with --data), or --attempts")
    for option, path in (("--samples", samples), ("--results", results), ("--attempts", attempts)):
        input_file(option, path)
    # The store is written: never one of the inputs, and a file only if it is a store of ours.
    output_file("--store", store, {"--samples": samples, "--results": results, "--data": data,
                                   "--attempts": attempts}, creates_folder=True)  # fmt: skip
    if store.is_file() and store.stat().st_size > 0:  # an empty file becomes a new store
        check_store_option("--store", store)
    tasks = load_tasks(benchmark.value, data, split) if benchmark else None
    _run(
        lambda: add_main(
            store,
            tasks=tasks,
            samples=samples,
            results=results,
            attempts_file=attempts,
            embedder=embedder,
            model_step=model_step,
        )
    )


@app.command("search")
def search(
    store: StoreOption,
    query: Annotated[str, typer.Argument(help="A stored task id, or free text describing a task.")],
    k: Annotated[int, typer.Option(help="Similar tasks whose best passing program to return.")] = 3,
    errors: Annotated[int, typer.Option(help="Most frequent errors on similar tasks to return.")] = 3,
    include_test: Annotated[bool, typer.Option(help="Also retrieve test-split tasks.")] = False,
    embedder: EmbedderOption = None,
    max_similarity: MaxSimilarityOption = None,
    max_example_similarity: MaxExampleSimilarityOption = None,
) -> None:
    """Best passing programs of the most similar other tasks, and their most frequent errors."""
    from codefalcon.memory import ExampleFilter, search_main

    at_least("--k", k, 1)
    at_least("--errors", errors, 0)
    check_store_option("--store", store)
    rules = ExampleFilter(max_similarity, max_example_similarity)
    _run(
        lambda: search_main(
            store, query, k=k, n_errors=errors, include_test=include_test, embedder=embedder, rules=rules
        )
    )


@app.command("stats")
def stats(store: StoreOption) -> None:
    """Tasks and attempts per split and verdict, the embedder and the index state."""
    from codefalcon.memory import stats_main

    check_store_option("--store", store)
    _run(lambda: stats_main(store))


@app.command("export")
def export(
    store: StoreOption, out: Annotated[Path, typer.Option(help="JSONL (or .jsonl.gz) to write.")]
) -> None:
    """Every attempt as one JSON line."""
    from codefalcon.memory import export_main

    check_store_option("--store", store)
    output_file("--out", out, {"--store": store}, creates_folder=True)
    _run(lambda: export_main(store, out))


def _run(command: Any) -> None:
    try:
        summary = command()
    except (FileNotFoundError, ValueError) as e:
        raise fail(str(e)) from None
    print_result(summary)
