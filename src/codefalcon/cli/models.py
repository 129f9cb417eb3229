"""`codefalcon generate` and `codefalcon model ...`: sample programs from a policy, build the tiny model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from codefalcon.cli.checks import at_least, check_store_option, load_tasks, options_model, output_file
from codefalcon.cli.common import (
    Benchmark,
    LanguageOption,
    MaxExampleSimilarityOption,
    MaxSimilarityOption,
    SourceOption,
    TargetOption,
    err,
    fail,
    print_result,
)
from codefalcon.cli.serve import (
    Backend,
    BackendOption,
    BackendThreadsOption,
    BackendUrlOption,
    backend_options,
    build_backend,
)

if TYPE_CHECKING:
    from codefalcon.models import Policy

app = typer.Typer(help="Build and inspect policies.", no_args_is_help=True)

ModelOption = Annotated[
    str,
    typer.Option(
        "--model",
        help="A local Hugging Face folder, a .gguf file, or a short name (smollm2-135m). "
        "Nothing is downloaded.",
    ),
]


def generate(
    model: ModelOption,
    benchmark: Annotated[Benchmark, typer.Option(help="Which benchmark's tasks to prompt with.")],
    out: Annotated[
        Path, typer.Option(help="Samples JSONL to append to (human-eval format; resumes if it exists).")
    ],
    data: Annotated[
        Path | None,
        typer.Option(
            help="Benchmark data (MBPP jsonl/json, APPS folder, tasks jsonl, humanevalx file or "
            "folder); HumanEval needs none."
        ),
    ] = None,
    language: LanguageOption = None,
    source: SourceOption = None,
    target: TargetOption = None,
    split: Annotated[str | None, typer.Option(help="Split to load (MBPP/APPS/jsonl), e.g. test.")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N tasks.")] = None,
    n: Annotated[int, typer.Option(help="Samples per task.")] = 1,
    temperature: Annotated[float, typer.Option(help="Sampling temperature; 0 = greedy.")] = 0.0,
    top_p: Annotated[float, typer.Option(help="Nucleus sampling mass (1 = off).")] = 0.95,
    top_k: Annotated[int, typer.Option(help="Keep the k most likely tokens (0 = off).")] = 0,
    max_new_tokens: Annotated[int, typer.Option(help="Token budget per sample.")] = 512,
    stop: Annotated[
        list[str] | None,
        typer.Option(
            help="Extra stop sequence (repeatable), added to the prompt's own; a chat model's prose "
            "after its code costs as many tokens as the code, so '\\n```\\n' ends a sample at its "
            "closing fence. Backslash escapes (\\n, \\t) are read."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Run seed: the same seed gives the same samples.")] = 0,
    batch_size: Annotated[
        int, typer.Option(help="Most sequences per generate call (memory bound; CodeRL's num_seqs_per_iter).")
    ] = 16,
    lora: Annotated[Path | None, typer.Option(help="A saved peft LoRA adapter folder to apply.")] = None,
    dtype: Annotated[
        str,
        typer.Option(
            help="Weights dtype: float32 or bfloat16 (with --backend vllm: the engine's; the policy it "
            "is exported from stays float32)."
        ),
    ] = "float32",
    device: Annotated[
        str, typer.Option(help="auto (CUDA when available, else CPU), cpu, cuda or cuda:N.")
    ] = "auto",
    backend: BackendOption = Backend.hf,
    backend_url: BackendUrlOption = None,
    backend_threads: BackendThreadsOption = None,
) -> None:
    """Sample N programs per task into a samples JSONL that `codefalcon evaluate` reads.

    Each line is {"task_id", "completion", "solution"}: the raw model text and the program
    extracted from it (what evaluate runs). Rerunning with the same --out continues where an
    interrupted run stopped and draws exactly the samples it would have drawn.
    """
    from codefalcon.models import SamplingParams, generate_samples, load_policy

    at_least("--n", n, 1)
    at_least("--limit", limit, 1)
    at_least("--batch-size", batch_size, 1)
    if dtype not in ("float32", "bfloat16"):
        raise fail(f"--dtype must be float32 or bfloat16, got {dtype!r}")
    output_file("--out", out, {"--data": data}, creates_folder=True)  # appended to, so never the data
    engine_options = backend_options(backend, backend_url, backend_threads)  # checked before the load
    if backend is Backend.vllm:
        # vLLM runs its own copy of the weights: rounding the exported policy first would only
        # lose precision, so the engine alone takes --dtype.
        engine_options["dtype"], dtype = dtype, "float32"
    try:
        params = SamplingParams(
            temperature=temperature,
            top_p=top_p,
            top_k=top_k,
            max_new_tokens=max_new_tokens,
            stop=tuple(_unescaped("--stop", text) for text in stop or ()),
            seed=seed,
        )
    except ValueError as e:
        raise fail(str(e)) from None
    tasks = load_tasks(benchmark.value, data, split, language, source, target)
    tasks = tasks[:limit] if limit else tasks
    try:
        from codefalcon.models import resolve_device

        resolve_device(device)
    except ValueError as e:
        raise fail(f"--device: {e}") from None
    try:
        policy = load_policy(model, dtype=dtype, lora=lora, device=device)
    except (FileNotFoundError, ValueError) as e:
        raise fail(f"--model: {e}") from None
    err.print(f"{policy.name}: {policy.kind}, {'chat' if policy.is_chat else 'no chat template'}")
    engine = build_backend(engine_options, policy, batch_size, seed)
    try:
        stats = generate_samples(policy, tasks, n, params, out, backend=engine, batch_size=batch_size)
    finally:
        engine.close()
    err.print(
        f"{stats.samples_written} samples for {stats.tasks - stats.tasks_skipped} tasks "
        f"({stats.tasks_skipped} already done), {stats.tokens} tokens in {stats.seconds:.1f} s = "
        f"{stats.tokens_per_second:.1f} tok/s, {stats.samples_truncated} hit max_new_tokens -> {out}"
    )


def _unescaped(option: str, text: str) -> str:
    """A stop sequence typed on a shell command line, with its backslash escapes read."""
    try:
        value = text.encode("latin-1", "backslashreplace").decode("unicode_escape")
    except UnicodeDecodeError as e:
        raise fail(f"{option}: bad escape in {text!r}: {e.reason}") from None
    if not value:
        raise fail(f"{option}: a stop sequence cannot be empty")
    return value


@app.command("build-tiny")
def build_tiny(
    out: Annotated[Path, typer.Option(help="Folder to write the model and tokenizer to.")],
    arch: Annotated[
        str,
        typer.Option(help="llama (decoder-only, rotary positions), gpt2 (decoder-only) or t5 (seq2seq)."),
    ] = "llama",
    source: Annotated[
        list[Path] | None,
        typer.Option(help="Python files or folders to train the tokenizer on \\[default: a stdlib sample]."),
    ] = None,
    vocab_size: Annotated[int, typer.Option(help="Upper bound on the BPE vocabulary.")] = 8000,
    n_layer: Annotated[int, typer.Option(help="Transformer layers.")] = 4,
    n_embd: Annotated[int, typer.Option(help="Hidden size.")] = 256,
    n_head: Annotated[int, typer.Option(help="Attention heads.")] = 4,
    n_positions: Annotated[int, typer.Option(help="Context length in tokens.")] = 512,
    seed: Annotated[int, typer.Option(help="Seed for the random initial weights.")] = 0,
) -> None:
    """Train a byte-level BPE on Python source and save a random-init tiny model beside it.

    The folder reloads with plain from_pretrained and works as --model everywhere.
    """
    from codefalcon.models import build_tiny_model

    if arch not in ("gpt2", "llama", "t5"):
        raise fail(f"--arch must be gpt2, llama or t5, got {arch!r}")
    files = _python_files(source) if source else None
    if files is not None and not files:
        raise fail("--source: no .py files found in " + ", ".join(map(str, source or [])))
    try:
        info = build_tiny_model(
            out, files, vocab_size=vocab_size, n_layer=n_layer, n_embd=n_embd, n_head=n_head,
            n_positions=n_positions, seed=seed, arch=arch,  # type: ignore[arg-type]  # checked above
        )  # fmt: skip
    except ValueError as e:
        raise fail(str(e)) from None
    err.print(
        f"{info.n_params / 1e6:.1f} M parameters, vocabulary {info.vocab_size}, tokenizer trained on "
        f"{info.n_source_files} files ({info.n_source_bytes / 1e6:.1f} MB) -> {info.out_dir}"
    )
    print(json.dumps({"out": str(info.out_dir), "n_params": info.n_params, "vocab_size": info.vocab_size}))


@app.command("merge")
def merge(
    model: ModelOption,
    lora: Annotated[
        Path, typer.Option(help="A saved peft LoRA adapter folder (a run's final/ or checkpoint).")
    ],
    out: Annotated[Path, typer.Option(help="New folder for the merged model (must not exist or be empty).")],
) -> None:
    """Merge a LoRA adapter into its base and save a plain Hugging Face folder.

    The folder works as --model everywhere (and as the start of another run: a second adapter
    trains on top of the first's merged weights); engines that load from disk need no peft.
    """
    from codefalcon.models import load_policy

    _check_adapter(lora)
    _check_out(out)
    try:
        policy = load_policy(model, lora=lora, device="cpu")
    except (FileNotFoundError, ValueError) as e:
        raise fail(f"--model: {e}") from None
    _write_model(policy, out)
    err.print(f"{policy.name} + {lora} merged -> {out}")
    print(json.dumps({"out": str(out), "base": str(model), "lora": str(lora)}))


@app.command("soup")
def soup(
    model: ModelOption,
    lora: Annotated[
        list[Path],
        typer.Option(help="A saved peft LoRA adapter trained from --model; repeat it for each member."),
    ],
    out: Annotated[Path, typer.Option(help="New folder for the average (must not exist or be empty).")],
    weight: Annotated[
        list[float] | None,
        typer.Option(help="One weight per --lora, in the same order, scaled to sum to 1 \\[default: equal]."),
    ] = None,
    base_weight: Annotated[
        float,
        typer.Option(
            help="Add --model itself as a member with this weight, on --weight's scale (WiSE-FT: "
            "--lora RUN/final --base-weight 1 is the midpoint of the start and the fine-tuned model)."
        ),
    ] = 0.0,
) -> None:
    """Average several fine-tuned adapters of one base into a plain Hugging Face folder (a model soup).

    Each adapter is merged into --model and the merged weights are averaged. Runs from the same
    base that learnt different things by chance keep what they share: on SmolLM2-135M two RFT runs
    gave 7.6% and 8.0% MBPP test pass@1 alone and 8.2% as a soup (docs/rl.md).
    """
    from codefalcon.models.soup import member_weights, soup_policy, soup_weights

    for adapter in lora:
        _check_adapter(adapter)
    try:
        soup_weights(len(lora), weight or None)
    except ValueError as e:
        raise fail(f"--weight: {e}") from None
    try:
        scale = member_weights(len(lora), weight or None, base_weight)
    except ValueError as e:
        raise fail(f"--base-weight: {e}") from None
    _check_out(out)
    try:
        policy = soup_policy(model, lora, weight or None, base_weight)
    except (FileNotFoundError, ValueError, RuntimeError) as e:  # RuntimeError: torch's shape check
        raise fail(f"--model/--lora: {e}") from None
    _write_model(policy, out)
    names = [str(adapter) for adapter in lora] + (["the base"] if base_weight else [])
    members = ", ".join(f"{name} x {w:.3g}" for name, w in zip(names, scale, strict=True))
    err.print(f"{policy.name} + soup of {members} -> {out}")
    print(
        json.dumps(
            {
                "out": str(out),
                "base": str(model),
                "lora": [str(a) for a in lora],
                "weights": scale[: len(lora)],
                "base_weight": scale[-1] if base_weight else 0.0,
            }
        )
    )


def _check_adapter(lora: Path) -> None:
    if not (lora / "adapter_config.json").is_file():
        raise fail(f"--lora: no peft adapter (adapter_config.json) in {lora}")


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise fail(f"--out: {out} exists and is not an empty folder; nothing was written")


def _write_model(policy: Policy, out: Path) -> None:
    """Save ``policy`` at ``out``, written aside and renamed: an interrupt leaves no half model."""
    from codefalcon.models.backends.common import export_policy

    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    export_policy(policy, tmp)
    if out.exists():
        out.rmdir()
    tmp.rename(out)


def _python_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if not path.exists():
            raise fail(f"--source: no such file or folder: {path}")
        files.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    return files


def solve(
    model: ModelOption,
    benchmark: Annotated[Benchmark, typer.Option(help="Which benchmark's tasks to solve.")],
    out: Annotated[Path, typer.Option(help="Ranked samples JSONL (each task's first line is the pick).")],
    strategy: Annotated[
        str, typer.Option(help="sample, best_of_n, repair, critic (CodeRL critic sampling) or falcon.")
    ] = "sample",
    budget: Annotated[int, typer.Option(help="Generations per task, the same for every strategy.")] = 4,
    rounds: Annotated[int, typer.Option(help="Repair / refine rounds after the first samples.")] = 1,
    data: Annotated[Path | None, typer.Option(help="Benchmark data (not needed for HumanEval).")] = None,
    language: LanguageOption = None,
    source: SourceOption = None,
    target: TargetOption = None,
    split: Annotated[str | None, typer.Option(help="Split to solve.")] = "test",
    limit: Annotated[int | None, typer.Option(help="Only the first N tasks.")] = None,
    critic: Annotated[Path | None, typer.Option(help="A trained critic folder (critic, best_of_n).")] = None,
    memory: Annotated[Path | None, typer.Option(help="A long-term memory store (falcon).")] = None,
    retrieve_k: Annotated[int, typer.Option(help="Solved similar tasks per prompt (falcon).")] = 2,
    max_similarity: MaxSimilarityOption = None,
    max_example_similarity: MaxExampleSimilarityOption = None,
    temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = 0.8,
    max_new_tokens: Annotated[int, typer.Option(help="Token budget per generation.")] = 512,
    seed: Annotated[int, typer.Option(help="Run seed.")] = 0,
    batch_size: Annotated[int, typer.Option(help="Sequences per generate call.")] = 16,
    backend: BackendOption = Backend.hf,
    backend_url: BackendUrlOption = None,
    backend_threads: BackendThreadsOption = None,
) -> None:
    """Solve tasks with an inference strategy under a fixed generation budget; pass@1 and n@k.

    Example tests (from the statement, APPS' extracted examples, or MBPP's first test) select
    and repair programs; the hidden tests only score the final pick.
    """
    from codefalcon.inference import solve_main
    from codefalcon.inference.solve import SolveConfig

    options = {
        "model": model, "benchmark": benchmark.value, "out": out, "strategy": strategy, "budget": budget,
        "rounds": rounds, "data": data, "split": split, "limit": limit, "critic": critic, "memory": memory,
        "language": language and language.value, "source": source and source.value,
        "target": target and target.value,
        "retrieve_k": retrieve_k, "max_similarity": max_similarity,
        "max_example_similarity": max_example_similarity, "temperature": temperature,
        "max_new_tokens": max_new_tokens, "seed": seed, "batch_size": batch_size,
        "backend": backend_options(backend, backend_url, backend_threads),
    }  # fmt: skip
    config = options_model(SolveConfig, options)
    output_file("--out", out, {"--data": data}, creates_folder=True)
    load_tasks(benchmark.value, data, split, language, source, target)  # refused before the policy loads
    if memory is not None:
        check_store_option("--memory", memory)
    try:
        summary = solve_main(config)
    except (FileNotFoundError, ValueError) as e:
        raise fail(str(e)) from None
    print_result(summary, {k: v for k, v in summary.items() if k not in ("hidden_tests", "config")})
