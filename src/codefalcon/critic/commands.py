"""What `codefalcon critic train|score` run: config in, plain data out, for the CLI to print.

Nothing here prints or exits; errors are exceptions that the CLI turns into messages:
`codefalcon.configs.ConfigError` for bad configs, other ``ValueError`` for bad data
(`CriticDataError`, `SamplesError`, `TaskFormatError`) and ``FileNotFoundError`` for missing
files.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from codefalcon.configs import config_from_mapping, load_config, read_yaml_mapping
from codefalcon.critic.data import default_problem_text, read_result_outcomes
from codefalcon.critic.labels import class_index
from codefalcon.critic.model import Critic
from codefalcon.critic.train import CriticTrainConfig, score_programs, train_critic


def load_train_config(
    path: str | os.PathLike[str] | None = None,
    overrides: Sequence[str] | Mapping[str, Any] = (),
) -> CriticTrainConfig:
    """A validated config from a YAML (or JSON) file, with overrides on top.

    ``overrides``: ``key=value`` strings, as the CLI passes them (`codefalcon.configs`), or a
    mapping for callers in Python, whose None values are skipped so a CLI can pass every option
    it has and override only what the user set. Errors are `ConfigError` naming the key.
    """
    if not isinstance(overrides, Mapping):
        return load_config(CriticTrainConfig, path, list(overrides))
    data = read_yaml_mapping(Path(path)) if path is not None else {}
    data.update({k: v for k, v in overrides.items() if v is not None})
    return config_from_mapping(CriticTrainConfig, data, str(path) if path is not None else "overrides")


def critic_train_main(
    config: str | os.PathLike[str] | None = None, overrides: Sequence[str] | Mapping[str, Any] = ()
) -> dict[str, Any]:
    """Train a critic from a config file and/or overrides; the metrics, plus ``out_dir``."""
    settings = load_train_config(config, overrides)
    metrics = train_critic(settings)
    return {**metrics, "out_dir": str(settings.out_dir)}


def critic_score_main(
    critic: str | os.PathLike[str],
    benchmark: str,
    samples: str | os.PathLike[str],
    *,
    data: str | os.PathLike[str] | None = None,
    split: str | None = None,
    results: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    batch_size: int = 8,
) -> dict[str, Any]:
    """Score every program of a samples file with a saved critic; write one JSON line per sample.

    Output rows (in samples order): ``task_id``, ``completion_id``, ``label``, ``probs`` (per
    class) and ``pass_probability``. With ``results`` (the samples' evaluate results), rows also
    get the true ``outcome`` and the summary gets the critic's ``accuracy`` on the samples whose
    harness did not fail. Returns a summary: counts per predicted label, mean pass probability,
    the output path.
    """
    from codefalcon.evaluation.samples import read_samples
    from codefalcon.tasks.registry import load_benchmark, normalize_task_id

    normalize = partial(normalize_task_id, benchmark)
    tasks = {t.task_id: t for t in load_benchmark(benchmark, data, split)}
    rows = read_samples(samples, tasks, normalize)
    model = Critic.load(critic)
    problems = [default_problem_text(tasks[s.task_id]) for s in rows]
    scores = score_programs(model, problems, [s.program for s in rows], batch_size)
    truth = read_result_outcomes(results, normalize) if results is not None else None
    lines, correct, judged = [], 0, 0
    for sample, score in zip(rows, scores, strict=True):
        line = {"task_id": sample.task_id, "completion_id": sample.completion_id, "label": score.label}
        line |= {"probs": score.probs, "pass_probability": score.pass_probability}
        outcome = truth.get((sample.task_id, sample.completion_id)) if truth is not None else None
        if outcome is not None:
            line["outcome"] = outcome.label
            judged += 1
            correct += model.config.labels[class_index(outcome, model.config.binary)] == score.label
        lines.append(line)
    out_path = Path(out) if out is not None else _default_out(Path(samples))
    out_path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return {
        "n_samples": len(rows),
        "labels": dict(Counter(s.label for s in scores)),
        "mean_pass_probability": sum(s.pass_probability for s in scores) / len(scores),
        "accuracy": correct / judged if judged else None,
        "out": str(out_path),
    }


def _default_out(samples: Path) -> Path:
    """SAMPLES_critic.jsonl beside the samples file (the evaluate command's naming)."""
    return samples.with_name(samples.name.split(".jsonl")[0] + "_critic.jsonl")
