"""The RL update's forward + backward on SmolLM2, before and after three savings (2026-12-07).

    python benchmarks/bench_update.py [--model smollm2-135m] [--micro-batches 4] [--per-prompt 2]
                                      [--budget 160] [--completion-tokens 40] [--threads N] [--no-lora]

`codefalcon.rl.logprobs.completion_forward` now (1) runs a micro-batch only to its own longest
completion (a step pads every completion to its longest sample, often one cut at the token
budget), (2) asks the model for the logits of the completion positions only, also through
peft's wrapper (which used to hide ``logits_to_keep``, so a LoRA update ran the output layer at
every prompt position), and (3) runs each distinct prompt once and gathers its keys and values
for every row that shares it (a task's samples do). This times RFT's loss (the mean
log-probability of the completion tokens, forward + backward) in one process on micro-batches
of 8 rows: MBPP test prompts, each ``--per-prompt`` times (RFT on SmolLM2 learns 30-40 programs
of 16 tasks a step), with their reference programs cut to ``--completion-tokens`` (40: about the
verified programs' length; 0: whole references) as completions, padded to ``--budget``; LoRA
r = 16 on every linear layer (`--no-lora`: full fine-tuning). Modes:

- **before**: every row whole, padded to the budget, the output layer at every position;
- **trimmed**: (1) and (2), every row still whole;
- **shared**: (1), (2) and (3): what the update runs now.

Each mode runs once untimed (kernels, allocator) and once timed. The table prints seconds per
micro-batch and the speed-up over "before"; the three losses must agree (the script prints
their spread).
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from codefalcon.models.generation import encode_prompt
from codefalcon.models.prompter import Prompter
from codefalcon.rl.logprobs import _causal_logits, completion_forward, gather_logprobs
from codefalcon.rl.policy_setup import LoraOptions, load_trainable_policy
from codefalcon.tasks.registry import load_benchmark


def micro_batches(policy, args: argparse.Namespace) -> list[tuple[torch.Tensor, ...]]:
    """(prompt_ids, prompt_mask, completion_ids, completion_mask) of 8 rows each."""
    rows_needed = 8 * args.micro_batches
    tasks = load_benchmark("mbpp", path=args.data, split="test")[: -(-rows_needed // args.per_prompt)]
    prompter = Prompter.from_policy(policy, args.budget)
    tok = policy.tokenizer
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    rows = []
    for task in tasks:
        prompt = encode_prompt(tok, prompter.base(task).text)
        answer = tok(f"```python\n{task.solutions[0]}\n```", add_special_tokens=False)["input_ids"]
        keep = args.completion_tokens or args.budget
        rows += [(prompt, [*answer, tok.eos_token_id][: min(keep, args.budget)])] * args.per_prompt
    rows = rows[:rows_needed]
    batches = []
    for start in range(0, len(rows), 8):
        chunk = rows[start : start + 8]
        width = max(len(p) for p, _ in chunk)
        p_ids = torch.full((len(chunk), width), pad)
        p_mask = torch.zeros((len(chunk), width), dtype=torch.long)
        c_ids = torch.full((len(chunk), args.budget), pad)
        c_mask = torch.zeros((len(chunk), args.budget), dtype=torch.long)
        for i, (p, c) in enumerate(chunk):
            p_ids[i, width - len(p) :], p_mask[i, width - len(p) :] = torch.tensor(p), 1
            c_ids[i, : len(c)], c_mask[i, : len(c)] = torch.tensor(c), 1
        batches.append((p_ids, p_mask, c_ids, c_mask))
    return batches


class EveryPosition(nn.Module):
    """A forward that takes neither ``logits_to_keep`` nor a cache: the update before."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model, self.config = model, model.config

    def forward(self, **kwargs):
        return self.model(**kwargs)


class NoCache(EveryPosition):
    """A forward that takes ``logits_to_keep`` but no cache: every row runs whole."""

    def forward(self, input_ids, attention_mask, position_ids, logits_to_keep=0, **kwargs):
        return self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            logits_to_keep=logits_to_keep,
            **kwargs,
        )


def run(model, batches, mode: str) -> tuple[float, float]:
    """(seconds per micro-batch, mean loss) of the timed pass."""
    for timed in (False, True):
        model.zero_grad()
        losses = []
        started = time.perf_counter()
        for p_ids, p_mask, c_ids, c_mask in batches:
            if mode == "before":
                logits, _ = _causal_logits(EveryPosition(model), p_ids, p_mask, c_ids, c_mask)
            else:
                forward = NoCache(model) if mode == "trimmed" else model
                logits, _ = completion_forward(forward, p_ids, p_mask, c_ids, c_mask)
            logp = gather_logprobs(logits, c_ids, c_mask)
            loss = -(logp.sum() / c_mask.sum())
            loss.backward()
            losses.append(float(loss.detach()))
        seconds = (time.perf_counter() - started) / len(batches)
        if timed:
            return seconds, sum(losses) / len(losses)
    raise AssertionError("unreachable")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--data", default="../shared/data/mbpp.jsonl")
    parser.add_argument("--micro-batches", type=int, default=4)
    parser.add_argument("--per-prompt", type=int, default=2, help="rows sharing each prompt")
    parser.add_argument("--budget", type=int, default=160, help="the step's completion width")
    parser.add_argument("--completion-tokens", type=int, default=40, help="0: whole references")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--no-lora", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    lora = None if args.no_lora else LoraOptions(r=16, alpha=32, dropout=0.0, target_modules="all-linear")
    policy = load_trainable_policy(args.model, "float32", lora, None, "cpu")
    model = policy.model.eval()  # as in training: no dropout, so the modes compute one loss
    batches = micro_batches(policy, args)
    results = {mode: run(model, batches, mode) for mode in ("before", "trimmed", "shared")}
    print(
        f"{args.model}, {'full' if args.no_lora else 'LoRA r=16 all-linear'}, {args.threads} threads, "
        f"{len(batches)} micro-batches of 8 rows, {args.per_prompt} per prompt, completions of at most "
        f"{args.completion_tokens or args.budget} tokens padded to {args.budget}"
    )
    print("| mode | s / micro-batch | speed-up |")
    print("| --- | ---: | ---: |")
    for mode, (seconds, _) in results.items():
        print(f"| {mode} | {seconds:.2f} | {results['before'][0] / seconds:.2f} |")
    losses = [loss for _, loss in results.values()]
    print(f"losses {', '.join(f'{x:.6f}' for x in losses)} (spread {max(losses) - min(losses):.1e})")


if __name__ == "__main__":
    main()
