"""Regenerate ``completions.jsonl``: real SmolLM2-135M-Instruct outputs used as extraction fixtures.

Run from the repository root (takes about ten minutes on two CPU cores)::

    /opt/cfvenv/bin/python tests/models/data/make_completions.py

Each line holds one raw model output and how it was prompted: ``task_id``, ``format`` (chat or
completion), ``mode`` (the `ExtractMode` to read it with), ``temperature``, ``sample`` (index)
and ``completion``. Outputs are committed as they came out of the model, mess included: that is
the point of the fixture.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from codefalcon.models import HFBackend, PromptFormat, SamplingParams, build_prompt, load_policy
from codefalcon.models.prompts import chat_template_renderer
from codefalcon.tasks import load_apps, load_humaneval, load_mbpp

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[3] / "shared" / "data"
HUMANEVAL_IDS = [0, 2, 4, 7, 10, 12, 13, 16, 23, 28, 30, 38]
MBPP_IDS = list(range(11, 21))
APPS_IDS = ["APPS/1", "APPS/2404"]
RUNS = [  # (format, temperature, samples, max_new_tokens)
    (PromptFormat.CHAT, 0.0, 1, 384),
    (PromptFormat.CHAT, 0.8, 2, 384),
    (PromptFormat.COMPLETION, 0.0, 1, 256),
    (PromptFormat.COMPLETION, 0.8, 1, 256),
]


def main(out_path: Path) -> None:
    humaneval = {t.task_id: t for t in load_humaneval()}
    mbpp = {t.task_id: t for t in load_mbpp(SHARED / "mbpp.jsonl")}
    apps = {t.task_id: t for t in load_apps(SHARED / "apps-samples")}
    tasks = [humaneval[f"HumanEval/{i}"] for i in HUMANEVAL_IDS] + [mbpp[f"Mbpp/{i}"] for i in MBPP_IDS]
    apps_tasks = [apps[k] for k in APPS_IDS]
    policy = load_policy("smollm2-135m")
    backend = HFBackend(policy, batch_size=8)
    render = chat_template_renderer(policy.tokenizer)
    out_path.write_text("")
    for fmt, temperature, n, budget in RUNS:
        prompts = [build_prompt(task, fmt, render) for task in tasks]
        _append(out_path, _run(backend, tasks, prompts, fmt, temperature, n, budget))
    prompts = [build_prompt(task, PromptFormat.CHAT, render) for task in apps_tasks]
    _append(out_path, _run(backend, apps_tasks, prompts, PromptFormat.CHAT, 0.0, 1, 384))
    print(f"wrote {len(out_path.read_text().splitlines())} completions to {out_path}")


def _append(path: Path, rows: list[dict]) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def _run(backend, tasks, prompts, fmt, temperature, n, budget) -> list[dict]:
    by_stop: dict[tuple[str, ...], list[int]] = {}
    for i, prompt in enumerate(prompts):
        by_stop.setdefault(prompt.stop, []).append(i)
    rows = []
    for stops, indices in by_stop.items():
        params = SamplingParams(temperature=temperature, max_new_tokens=budget, stop=stops, seed=0)
        outputs = backend.generate([prompts[i].text for i in indices], params, n)
        for i, completions in zip(indices, outputs, strict=True):
            for sample, completion in enumerate(completions if temperature else completions[:1]):
                rows.append(
                    {
                        "task_id": tasks[i].task_id,
                        "format": fmt.value,
                        "mode": prompts[i].mode.value,
                        "temperature": temperature,
                        "sample": sample,
                        "finish_reason": completion.finish_reason.value,
                        "completion": completion.text,
                    }
                )
        print(f"{fmt.value} T={temperature}: {len(indices)} tasks x {n}", file=sys.stderr)
    return rows


if __name__ == "__main__":
    main(HERE / "completions.jsonl")
