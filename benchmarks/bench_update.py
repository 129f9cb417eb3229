"""The RL update's forward + backward: completions padded to the step's budget against trimmed.

    python benchmarks/bench_update.py [--model smollm2-135m] [--micro-batches 6] [--budget 160]
                                      [--threads N] [--no-lora]

A step's completions are padded to its longest sample (often one cut at ``max_new_tokens``);
`codefalcon.rl.logprobs.completion_forward` runs a micro-batch only up to its own longest
completion and gives the rest back as zero logits. This times, in one process, RFT's loss
(the mean log-probability of the completion tokens, forward + backward) on micro-batches of 8
MBPP test prompts with their reference programs as completions, the policy under LoRA r = 16 on
every linear layer (`--no-lora`: full fine-tuning), two ways:

- **padded**: every row runs to ``--budget`` completion columns (what the update did before);
- **trimmed**: `completion_forward`, each micro-batch to its own width.

Each mode runs once untimed (kernels, allocator) and once timed. The table prints seconds per
micro-batch, the tokens the model saw, and the ratio padded / trimmed (above 1: trimming is
faster); the loss of the two must agree, and the script says how closely.
"""

from __future__ import annotations

import argparse
import time

import torch

from codefalcon.models.generation import encode_prompt
from codefalcon.models.prompter import Prompter
from codefalcon.rl.logprobs import _causal_logits, completion_forward, gather_logprobs
from codefalcon.rl.policy_setup import LoraOptions, load_trainable_policy
from codefalcon.tasks.registry import load_benchmark


def micro_batches(policy, args: argparse.Namespace) -> list[tuple[torch.Tensor, ...]]:
    """(prompt_ids, prompt_mask, completion_ids, completion_mask) of 8 MBPP test tasks each."""
    tasks = load_benchmark("mbpp", path=args.data, split="test")[: 8 * args.micro_batches]
    prompter = Prompter.from_policy(policy, args.budget)
    tok = policy.tokenizer
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    rows = []
    for task in tasks:
        prompt = encode_prompt(tok, prompter.base(task).text)
        answer = tok(f"```python\n{task.solutions[0]}\n```", add_special_tokens=False)["input_ids"]
        rows.append((prompt, [*answer, tok.eos_token_id][: args.budget]))
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


def run(model, batches, trimmed: bool) -> tuple[float, float, int]:
    """(seconds per micro-batch, mean loss, tokens seen) of the timed pass."""
    for timed in (False, True):
        model.zero_grad()
        losses, tokens = [], 0
        started = time.perf_counter()
        for p_ids, p_mask, c_ids, c_mask in batches:
            if trimmed:
                logits, _ = completion_forward(model, p_ids, p_mask, c_ids, c_mask)
                width = int(c_mask.any(dim=0).nonzero().max()) + 1
            else:
                logits, _ = _causal_logits(model, p_ids, p_mask, c_ids, c_mask)
                width = c_ids.shape[1]
            tokens += p_ids.shape[0] * (p_ids.shape[1] + width)
            logp = gather_logprobs(logits, c_ids, c_mask)
            loss = -(logp.sum() / c_mask.sum())
            loss.backward()
            losses.append(float(loss))
        seconds = (time.perf_counter() - started) / len(batches)
        if timed:
            return seconds, sum(losses) / len(losses), tokens
    raise AssertionError("unreachable")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--data", default="../shared/data/mbpp.jsonl")
    parser.add_argument("--micro-batches", type=int, default=6)
    parser.add_argument("--budget", type=int, default=160, help="the step's completion width")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--no-lora", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    lora = None if args.no_lora else LoraOptions(r=16, alpha=32, dropout=0.0, target_modules="all-linear")
    policy = load_trainable_policy(args.model, "float32", lora, None, "cpu")
    model = policy.model.train()  # dropout 0: the two modes must compute the same loss
    batches = micro_batches(policy, args)
    padded = run(model, batches, trimmed=False)
    trimmed = run(model, batches, trimmed=True)
    print(
        f"{args.model}, {'full' if args.no_lora else 'LoRA r=16 all-linear'}, {args.threads} threads, "
        f"{len(batches)} micro-batches of 8, completions padded to {args.budget}"
    )
    print("| mode | s / micro-batch | tokens seen | padded / trimmed |")
    print("| --- | ---: | ---: | ---: |")
    print(f"| padded | {padded[0]:.2f} | {padded[2]} | 1.00 |")
    print(f"| trimmed | {trimmed[0]:.2f} | {trimmed[2]} | {padded[0] / trimmed[0]:.2f} |")
    print(f"loss padded {padded[1]:.6f}, trimmed {trimmed[1]:.6f} (|diff| {abs(padded[1] - trimmed[1]):.1e})")


if __name__ == "__main__":
    main()
