"""Training throughput on this CPU: fp32 against bf16 autocast, warm-up step and RL step.

    python benchmarks/bench_train.py [--sft-steps 6] [--rl-steps 2] [--warmup-steps 60] [--tasks 300]
                                   [--threads N] [--device cpu|cuda]
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/bench_train.py  # as AVX2-only

Builds the `codefalcon run` tiny model (its embedded preset's ``tiny`` section) and ``--tasks``
generated tasks in a temporary folder, then, in one process and fp32 first (the baseline), for each
autocast mode:

- **warm-up (SFT) step**: ``--sft-steps`` optimiser steps of `codefalcon run`'s warm-up shape
  (2 x 16 examples, forward + backward + AdamW), timed on a second pass over the same batches
  (the first loads the kernels for each shape); tokens/s counts every prompt and answer token of
  the step (no padding);
- **RL step**: ``--rl-steps`` steps of `codefalcon run`'s RL stage (its embedded preset's ``rl``
  section: FALCON, 8 tasks x 8 samples, 96 new tokens) from a model warmed up for
  ``--warmup-steps`` fp32 steps first, split into generation, execution (the part not hidden
  behind generation) and update; the first step is dropped; tokens/s counts generated tokens.

A first row times one 512x256 -> 1024 linear layer, forward and backward (rows/s), the probe
of issue 12. Prints the CPU model, whether bf16 is native (`codefalcon.rl.optim.probe_cpu_bf16`; force with
``CODEFALCON_CPU_BF16=0/1``), and one table row per phase with fp32 and bf16 tokens/s and their
ratio (bf16 / fp32: above 1 means bf16 is faster). Sampling never runs under autocast, so
generation and execution should read about 1 (noise); the update and warm-up rows are the ones
that depend on the CPU's bf16 arithmetic. ``--device cuda`` runs every row on the GPU instead
(autocast there is always native; the table then says what bf16 buys on that GPU).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from codefalcon.models import build_tiny_model, load_policy
from codefalcon.models.answers import encode_example
from codefalcon.pipeline import DEFAULT_CONFIG
from codefalcon.rl.optim import optimizer_step, probe_cpu_bf16
from codefalcon.rl.sft import SFTConfig, TaskSource, accumulate_ce, train_sft
from codefalcon.rl.train import train_rl
from codefalcon.rl.train_config import TrainConfig
from codefalcon.tasks.registry import load_benchmark
from codefalcon.tasks.synth import synth_main

MODES = (("fp32", False), ("bf16", True))


def linear_tokens_per_second(autocast: bool, device: str = "cpu", repeats: int = 20) -> float:
    """Rows per second of a 512x256 -> 1024 linear layer, forward + backward (issue 12's probe)."""
    x, layer = torch.randn(512, 256, device=device), torch.nn.Linear(256, 1024, device=device)
    for timed in (False, True):  # the first round warms the kernels up
        _synchronize(device)
        started = time.perf_counter()
        for _ in range(repeats if timed else 3):
            with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=autocast):
                layer(x).float().sum().backward()
        _synchronize(device)
    return 512 * repeats / (time.perf_counter() - started)


def _synchronize(device: str) -> None:
    if torch.device(device).type == "cuda":  # kernels run asynchronously: time what they did
        torch.cuda.synchronize(device)


def sft_tokens_per_second(
    model_dir: Path, tasks_path: Path, autocast: bool, steps: int, device: str = "cpu"
) -> float:
    """Prompt + answer tokens per second of warm-up steps (2 micro-batches of 16, AdamW)."""
    policy = load_policy(model_dir, device=device)
    model = policy.model
    model.train()
    tasks = [t for t in load_benchmark("jsonl", str(tasks_path), "train") if t.solutions]
    examples = [encode_example(policy, t, t.solutions[0]) for t in tasks]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batches = [sorted(examples[i * 32 : (i + 1) * 32], key=lambda e: e.length) for i in range(steps)]
    tokens, seconds = 0, 0.0
    # The batches twice, timing the second pass only: each new batch shape costs a one-time
    # kernel load or selection (on an H200 the first bf16 steps took 150-850 ms against a
    # steady 45 ms), which would otherwise be timed as the step's speed.
    for timed in (False, True):
        for chosen in batches:
            _synchronize(device)
            started = time.perf_counter()
            accumulate_ce(model, policy.kind, [chosen[:16], chosen[16:]], autocast)
            optimizer_step(optimizer, 1.0)
            _synchronize(device)
            if timed:
                seconds += time.perf_counter() - started
                tokens += sum(e.length for e in chosen)
    return tokens / seconds


def rl_phases(
    model_dir: Path, tasks_path: Path, out: Path, autocast: bool, steps: int, device: str = "cpu"
) -> dict[str, float]:
    """Generated tokens per second of each RL phase (steps after the first), and seconds per step."""
    preset = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))["rl"]
    config = TrainConfig(
        **{
            **preset,
            "model": str(model_dir),
            "train": TaskSource(benchmark="jsonl", path=str(tasks_path), split="train"),
            "eval": None,
            "out_dir": str(out),
            "max_steps": steps + 1,
            "bf16_autocast": autocast,
            "save_every": 1000,
            "tensorboard": False,
            "device": device,
        }
    )
    train_rl(config, progress=False)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()][1:]
    tokens = sum(r["sample/length_mean"] * config.rollouts_per_step for r in rows)
    phases = {
        "generation": sum(r["time/generation"] for r in rows),
        "execution": sum(r["time/execution_wait"] for r in rows),
        "update": sum(r["time/update"] for r in rows),
    }
    result = {name: tokens / max(seconds, 1e-9) for name, seconds in phases.items()}
    # a step whose groups all had one reward (nothing solved, or everything) skips the update
    updated = [r for r in rows if r.get("falcon/adapted_tasks", 1.0) > 0]
    update_tokens = sum(r["sample/length_mean"] * config.rollouts_per_step for r in updated)
    update_seconds = sum(r["time/update"] for r in updated)
    result["update"] = update_tokens / update_seconds if updated else float("nan")
    result["whole step"] = tokens / sum(phases.values())
    result["seconds per step"] = sum(phases.values()) / len(rows)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sft-steps", type=int, default=6, help="timed warm-up steps per mode")
    parser.add_argument("--rl-steps", type=int, default=2, help="timed RL steps per mode (plus one)")
    parser.add_argument("--warmup-steps", type=int, default=60, help="fp32 warm-up before the RL step")
    parser.add_argument("--tasks", type=int, default=300, help="generated tasks")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cpu = probe_cpu_bf16()
    print(f"CPU: {cpu.model}; bf16 {'native' if cpu.native else 'emulated'} ({cpu.reason})")
    print(
        f"torch {torch.__version__}, dispatch {torch.backends.cpu.get_cpu_capability()}, "
        f"{torch.get_num_threads()} threads"
    )
    if args.device != "cpu":
        print(f"device: {args.device} ({torch.cuda.get_device_name(args.device)})")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        tasks = root / "tasks.jsonl"
        synth_main(args.tasks, 0, tasks, 0.1, "instance")
        tiny = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))["tiny"]
        build_tiny_model(root / "model", seed=0, **tiny)
        warmed = _warm_up(root, tasks, args.warmup_steps, args.device)
        table: dict[str, dict[str, float]] = {}
        for mode, autocast in MODES:
            t0 = time.perf_counter()
            linear = linear_tokens_per_second(autocast, args.device)
            table.setdefault("linear 512x256x1024 (rows/s)", {})[mode] = linear
            table.setdefault("warm-up step", {})[mode] = sft_tokens_per_second(
                root / "model", tasks, autocast, args.sft_steps, args.device
            )
            for phase, value in rl_phases(
                warmed, tasks, root / f"rl-{mode}", autocast, args.rl_steps, args.device
            ).items():
                table.setdefault(f"RL {phase}", {})[mode] = value
            print(f"  ({mode}: {time.perf_counter() - t0:.0f} s)", flush=True)
    print("| phase | fp32 tokens/s | bf16 tokens/s | bf16 / fp32 |")
    print("| --- | ---: | ---: | ---: |")
    for phase, row in table.items():
        digits = 1 if phase == "RL seconds per step" else 0
        fp32, bf16 = f"{row['fp32']:,.{digits}f}", f"{row['bf16']:,.{digits}f}"
        ratio = row["bf16"] / row["fp32"]
        if ratio != ratio:  # NaN: no step of this mode updated the policy
            fp32, bf16, ratio_text = "n/a (no update: raise --warmup-steps)", "n/a", "n/a"
        else:
            ratio_text = f"{ratio:.2f}"
        print(f"| {phase} | {fp32} | {bf16} | {ratio_text} |")


def _warm_up(root: Path, tasks: Path, steps: int, device: str = "cpu") -> Path:
    """A short fp32 warm-up so the RL step samples programs of realistic length, some passing."""
    config: dict[str, Any] = {
        "model": str(root / "model"),
        "train": [{"benchmark": "jsonl", "path": str(tasks), "split": "train"}],
        "out_dir": str(root / "sft"),
        "max_steps": steps,
        "micro_batch_size": 16,
        "grad_accum": 2,
        "lr": 1e-3,
        "warmup_steps": min(5, steps - 1),
        "bf16_autocast": False,
        "final_eval": False,
        "save_every": steps,
        "tensorboard": False,
        "device": device,
    }
    return Path(train_sft(SFTConfig(**config), progress=False)["final_model"])


if __name__ == "__main__":
    main()
