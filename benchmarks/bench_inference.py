"""Ablation of inference strategies at one sample budget: what filtering, repair, the critic and memory add.

    python benchmarks/bench_inference.py --model runs/sft-tiny/final --tasks runs/tasks.jsonl \
        [--benchmark jsonl] [--split test] [--limit 50] [--budget 4] [--rounds 1] \
        [--strategies sample,best_of_n,repair,critic,falcon] [--critic runs/critic] \
        [--memory runs/mem.db] [--temperature 0.8] [--max-new-tokens 128] [--out-dir DIR]

    python benchmarks/bench_inference.py --model smollm2-135m --benchmark mbpp \
        --tasks ../shared/data/mbpp.jsonl --split test --limit 20

Every strategy gets the same model, tasks, seed and budget of generations per task, and is scored
on the full hidden tests. Printed per strategy: pass@1 (the strategy's pick passes), 1@k ... k@k
(`n_at_k` over the ranked list, k = budget), the unbiased pass@1 of all its programs, generations
used per task (repair stops a chain once the example tests pass), the example-test pass rate of
its programs, and wall seconds (generation + example tests).

Without ``--memory``, falcon's long-term memory is built in the output folder from the *train*
split of the same benchmark: each train task's reference solution, run on its hidden tests and
stored with its real verdict (retrieval never returns test tasks). Without ``--critic``, the
critic and best-of-n strategies rank by the example tests alone (their notes say so). Without
``--model`` / ``--tasks``, an untrained tiny model and 120 synthetic tasks are built in the
output folder: that only shows the script runs (an untrained model solves nothing).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

from codefalcon.execution import Executor, ExecutorConfig
from codefalcon.inference import CriticScorer, Prompter, SolveConfig, Strategy, solve
from codefalcon.memory import Attempt, HashingEmbedder, LongTermMemory
from codefalcon.models import HFBackend, build_tiny_model, load_policy
from codefalcon.tasks.registry import load_benchmark


def build_defaults(out_dir: Path, model: str | None, tasks: str | None) -> tuple[str, str]:
    """An untrained tiny model and synthetic tasks, for whichever of the two is missing."""
    if model is None:
        model = str(out_dir / "tiny")
        build_tiny_model(model, vocab_size=2000, n_layer=2, n_embd=128, n_head=4, n_positions=512)
    if tasks is None:
        from codefalcon.tasks.synth import synth_main

        tasks = str(out_dir / "tasks.jsonl")
        synth_main(n=120, seed=0, out=Path(tasks), test_fraction=0.2)
    return model, tasks


def build_memory(path: Path, benchmark: str, data: str, executor: Executor) -> Path:
    """Long-term memory of the train split's reference solutions, with their real verdicts."""
    train = [t for t in load_benchmark(benchmark, data, "train") if t.solutions]
    results = executor.run_batch([(t.runnable(t.solutions[0]), t.tests) for t in train])
    with LongTermMemory(path, HashingEmbedder()) as memory:
        memory.add(
            [Attempt.from_execution(t, t.solutions[0], r) for t, r in zip(train, results, strict=True)]
        )
    print(f"memory: {len(train)} train references, {sum(r.passed for r in results)} passing -> {path}")
    return path


def row(name: str, s: dict, budget: int) -> str:
    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.1f}"

    ns = " | ".join(pct(v["value"]) for v in s["n_at_k"].values())
    return (
        f"| {name} | {pct(s['pass@1'])} | {ns} | {pct(s['sample_pass@1'])} | "
        f"{s['generations_per_task']:.2f} / {budget} | {pct(s['example_pass_rate'])} | {s['seconds']:.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", help="policy folder, .gguf or short name [default: untrained tiny]")
    parser.add_argument("--tasks", help="benchmark data file [default: synthetic tasks]")
    parser.add_argument("--benchmark", default="jsonl")
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--budget", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--strategies", default=",".join(s.value for s in Strategy))
    parser.add_argument("--critic", help="saved critic folder (codefalcon critic train)")
    parser.add_argument("--memory", help="long-term memory store [default: train references]")
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--out-dir", help="where samples, results and summaries go [default: a temp dir]")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out_dir = Path(args.out_dir or tempfile.mkdtemp(prefix="bench-inference-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    model, data = build_defaults(out_dir, args.model, args.tasks)
    tasks = load_benchmark(args.benchmark, data, args.split)[: args.limit]
    policy = load_policy(model)
    backend = HFBackend(policy, batch_size=args.batch_size)
    prompter = Prompter.from_policy(policy, args.max_new_tokens)
    scorer = CriticScorer.load(args.critic) if args.critic else None
    strategies = [Strategy(s) for s in args.strategies.split(",")]
    print(f"model {model}, {len(tasks)} {args.benchmark} {args.split} tasks, budget {args.budget}, "
          f"rounds {args.rounds}, T={args.temperature}, critic {args.critic or 'none'}")  # fmt: skip
    summaries = {}
    with Executor(ExecutorConfig(workers=args.workers)) as executor:
        memory_path = Path(args.memory) if args.memory else None
        if Strategy.FALCON in strategies and memory_path is None:
            memory_path = build_memory(out_dir / "memory.db", args.benchmark, data, executor)
        for strategy in strategies:
            config = SolveConfig(
                model=model, benchmark=args.benchmark, data=data, split=args.split, limit=args.limit,
                out=out_dir / f"{strategy.value}.jsonl", strategy=strategy, budget=args.budget,
                rounds=args.rounds, critic=args.critic,
                memory=memory_path if strategy is Strategy.FALCON else None,
                temperature=args.temperature, max_new_tokens=args.max_new_tokens, seed=args.seed,
            )  # fmt: skip
            memory = LongTermMemory(memory_path) if strategy is Strategy.FALCON else None
            try:
                summaries[strategy.value] = solve(
                    config, tasks, backend, prompter, executor, scorer=scorer, memory=memory
                )
            finally:
                if memory is not None:
                    memory.close()
            print(row(strategy.value, summaries[strategy.value], args.budget), flush=True)
    k = args.budget
    ns = " | ".join(summaries[next(iter(summaries))]["n_at_k"])
    print(f"\n| strategy | pass@1 | {ns} | pass@1 all programs | generations / task | example pass | s |")
    print("| --- " * (6 + len(ns.split(" | "))) + "|")
    for name, s in summaries.items():
        print(row(name, s, k))
    notes = {name: s["notes"] for name, s in summaries.items() if s["notes"]}
    if notes:
        print("\nnotes:", json.dumps(notes, indent=1))
    print(f"\nfiles: {out_dir}")


if __name__ == "__main__":
    main()
