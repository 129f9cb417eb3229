"""One self-contained HTML report per run or per evaluation (see docs/report.md).

`write_run_report` reads a run directory, every part optional: ``config.yaml``,
``metrics.jsonl`` (`codefalcon.rl.metrics_log`), ``eval/<name>/{summary.json,samples.jsonl,
results.jsonl}`` (`evaluate_policy`) and ``ablation.json``. It draws the training curves as
inline SVG, tables pass@k before and after, and lists every task of the latest evaluation with
its programs, verdicts and feedback. `write_evaluation_report` does the same for one
``codefalcon evaluate`` run. The file needs no network and no JavaScript library; what is
missing or unreadable is said on the page instead of raising.
"""

from __future__ import annotations

import datetime
import os
import re
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from codefalcon.evaluation.paired import paired_gain
from codefalcon.evaluation.report_data import (
    Evaluation,
    Metrics,
    find_evaluations,
    read_json,
    read_metrics,
    read_task_views,
)
from codefalcon.evaluation.report_html import (
    RATE_KEYS,
    cell,
    comparison_table,
    metric_names,
    na,
    page,
    percent,
    summary_table,
    task_browser,
    value_of,
)
from codefalcon.evaluation.report_svg import VERDICT_COLOURS, line_chart, stacked_chart
from codefalcon.evaluation.samples import SamplesError, read_results, solved_tasks

_KL = re.compile(r"(^|[/_.])kl([/_.]|$)", re.IGNORECASE)


def metric_group(key: str) -> str:
    """Which chart a metrics key belongs to: reward, pass_rate, kl, loss, verdict, time or other.

    >>> [metric_group(k) for k in ("reward/total", "loss/grpo/kl", "loss/policy", "exec/seconds")]
    ['reward', 'kl', 'loss', 'other']
    """
    if key.startswith("reward/"):
        return "reward"
    if key == "exec/pass_rate":
        return "pass_rate"
    if _KL.search(key):
        return "kl"
    for prefix in ("loss", "verdict", "time"):
        if key.startswith(prefix + "/"):
            return prefix
    return "other"


def _small_multiples(metrics: Metrics, keys: Sequence[str]) -> str:
    charts = "".join(
        line_chart(metrics.steps, {k: metrics.columns[k]}, k, width=340, height=180) for k in keys
    )
    return f'<div class="charts small">{charts}</div>'


def _verdict_order(keys: Sequence[str]) -> list[str]:
    """Verdict keys in `Verdict` order (passed at the bottom of the stack), unknown ones last."""
    known = list(VERDICT_COLOURS)
    return sorted(keys, key=lambda k: (known.index(k[8:]) if k[8:] in known else len(known), k))


def training_section(metrics: Metrics | None) -> str:
    """Curves of reward, pass rate, KL and losses, the verdict mix and time per phase, the rest."""
    if metrics is None:
        return na("no metrics.jsonl in the run directory.")
    if not metrics.steps:
        return na("metrics.jsonl has no readable records.")
    groups: dict[str, list[str]] = {}
    for key in metrics.columns:
        groups.setdefault(metric_group(key), []).append(key)
    cols, steps = metrics.columns, metrics.steps
    main: list[tuple[str, str, str]] = []  # (anchor, heading, chart): the big charts, two a row
    small: list[tuple[str, str, str]] = []  # (anchor, heading, html): small multiples

    def keys(group: str) -> list[str]:
        return groups.get(group, [])

    if keys("reward"):
        main.append(("reward", "Reward", line_chart(steps, {k: cols[k] for k in keys("reward")}, "Reward")))
    if keys("pass_rate"):
        chart = line_chart(steps, {"exec/pass_rate": cols["exec/pass_rate"]}, "Pass rate", y_range=(0.0, 1.0))
        main.append(("pass-rate", "Pass rate", chart))
    if keys("verdict"):
        ordered = _verdict_order(keys("verdict"))
        title = "Verdict mix over time (fraction of samples)"
        main.append(
            ("verdict-mix", "Verdict mix", stacked_chart(steps, {k[8:]: cols[k] for k in ordered}, title))
        )
    if keys("time"):
        series = {k[5:]: cols[k] for k in keys("time")}
        chart = stacked_chart(steps, series, "Time per phase (seconds)", bars=len(steps) <= 100)
        main.append(("time", "Time per phase", chart))
    if keys("kl"):
        small.append(("kl", "KL", _small_multiples(metrics, keys("kl"))))
    if keys("loss"):
        small.append(("loss", "Losses", _small_multiples(metrics, keys("loss"))))
    others = keys("other")
    if others:
        by_namespace: dict[str, list[str]] = {}
        for key in others:
            by_namespace.setdefault(key.split("/")[0] if "/" in key else "(no namespace)", []).append(key)
        html = "".join(
            f"<h4>{escape(ns)}</h4>{_small_multiples(metrics, ks)}" for ns, ks in by_namespace.items()
        )
        small.append(("other-metrics", "Other metrics", html))
    missing = [
        name
        for name, group in (("reward/*", "reward"), ("exec/pass_rate", "pass_rate"), ("KL", "kl"))
        if not keys(group)
    ]
    head = f'<p class="sub">{len(steps)} steps logged, from step {steps[0]:g} to {steps[-1]:g}.'
    if missing:
        head += " Not logged: " + escape(", ".join(missing)) + "."
    links = " · ".join(f'<a href="#{a}">{escape(h)}</a>' for a, h, _ in main + small)
    grid = "".join(f'<div id="{a}">{chart}</div>' for a, _, chart in main)
    body = "".join(f'<h3 id="{a}">{escape(h)}</h3>{html}' for a, h, html in small)
    return f'{head}</p><p>{links}</p><div class="charts">{grid}</div>{body}'


def evaluations_section(evaluations: Sequence[Evaluation]) -> str:
    """Before/after comparison when both exist, then every evaluation's own tables."""
    if not evaluations:
        return na("no eval/<name>/summary.json in the run directory.")
    by_name = {e.name: e for e in evaluations}
    before, after = by_name.get("before"), by_name.get("after")
    html = ""
    if before and after and before.summary and after.summary:
        html += "<h3 id='before-after'>Before and after training</h3>" + comparison_table(
            before.summary, after.summary
        )
        html += paired_note(before, after)
    else:
        html += na("a before/after comparison needs eval/before/summary.json and eval/after/summary.json.")
    for e in evaluations:
        html += f'<h3 id="eval-{escape(e.name)}">eval/{escape(e.name)}</h3>'
        html += (
            summary_table(e.summary)
            if e.summary
            else na(f"eval/{e.name}/summary.json is missing or unreadable.")
        )
        generation = (e.summary or {}).get("generation")
        if isinstance(generation, Mapping):
            text = ", ".join(
                f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}" for k, v in generation.items()
            )
            html += f'<p class="note">generation: {escape(text)}</p>'
    return html


GREEDY_ONLY = "The paired interval is given for greedy evaluations (one sample per task)."


def paired_note(before: Evaluation, after: Evaluation) -> str:
    """The gain on the tasks both evaluations share, with its paired 95% interval and McNemar p."""
    if before.results_path is None or after.results_path is None:
        return na("a paired interval needs eval/before/results.jsonl and eval/after/results.jsonl.")
    try:
        rows = [read_results(e.results_path) for e in (before, after) if e.results_path]
        if any(len(r) != len({row.task_id for row in r}) for r in rows):
            return f'<p class="note">{GREEDY_ONLY}</p>'
        gain = paired_gain(solved_tasks(rows[0]), solved_tasks(rows[1]))
    except (SamplesError, ValueError) as e:
        return na(f"no paired interval: {e}")
    verdict = "excludes zero" if gain.significant else "includes zero: not beyond noise"
    return f'<p class="note" id="paired-gain">{escape(gain.describe())}; the interval {verdict}.</p>'


def ablation_section(ablation: Mapping[str, Any] | None) -> str:
    """pass@k (and n@k) per inference strategy, the best of each column in bold."""
    if ablation is None:
        return na("no ablation.json in the run directory.")
    strategies = ablation.get("strategies")
    if not isinstance(strategies, Mapping) or not strategies:
        return na('ablation.json has no "strategies" object.')
    summaries = {str(k): v if isinstance(v, Mapping) else {} for k, v in strategies.items()}
    names = metric_names(list(summaries.values())) + list(RATE_KEYS)
    best = {}
    for n in names:
        values = [value_of(s, n)[0] for s in summaries.values()]
        numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        best[n] = max(numbers) if numbers else None
    head = "".join(f"<th>{escape(n)}</th>" for n in ["strategy", "samples", *names])
    rows = "".join(
        f"<tr><td>{escape(name)}</td><td>{escape(str(s.get('n_samples', '—')))}</td>"
        + "".join(cell(s, n, best=best[n] is not None and value_of(s, n)[0] == best[n]) for n in names)
        + "</tr>"
        for name, s in summaries.items()
    )
    budget = ablation.get("budget")
    note = f'<p class="sub">Budget: {escape(str(budget))}</p>' if budget is not None else ""
    return f"{note}<table><tr>{head}</tr>{rows}</table>"


def _browsed(evaluations: Sequence[Evaluation]) -> Evaluation | None:
    """The evaluation whose tasks are listed: ``after``, else the last other one, else ``before``."""
    with_results = [e for e in evaluations if e.results_path is not None]
    ranked = sorted(with_results, key=lambda e: {"after": 2, "before": 0}.get(e.name, 1))
    return ranked[-1] if ranked else None


def tasks_section(evaluations: Sequence[Evaluation], notes: list[str]) -> str:
    chosen = _browsed(evaluations)
    if chosen is None or chosen.results_path is None:
        return na("no eval/<name>/results.jsonl in the run directory.")
    views = read_task_views(chosen.samples_path, chosen.results_path, notes)
    source = f"From eval/{chosen.name}: {len(views.tasks)} tasks."
    if chosen.samples_path is None:
        source += " Programs are not shown: samples.jsonl is missing."
    return f'<p class="sub">{escape(source)}</p>' + task_browser(views)


def config_section(run_dir: Path) -> str:
    path = run_dir / "config.yaml"
    if not path.is_file():
        return na("no config.yaml in the run directory.")
    text = path.read_text(encoding="utf-8", errors="replace")
    summary = f"config.yaml ({len(text.splitlines())} lines)"
    return f"<details><summary>{summary}</summary><pre>{escape(text)}</pre></details>"


def overview_section(metrics: Metrics | None, evaluations: Sequence[Evaluation]) -> str:
    """Headline numbers: steps, last reward and pass rate, pass@1 before and after."""
    cards = []
    if metrics and metrics.steps:
        cards.append((f"{metrics.steps[-1]:g}", "last step"))
        for key in ("reward/total", "exec/pass_rate"):
            values = [v for v in metrics.columns.get(key, []) if v is not None]
            if values:
                cards.append((f"{values[-1]:.4g}", f"last {key}"))
    for e in evaluations:
        if e.summary:
            metric = (metric_names([e.summary]) or ["strict_accuracy"])[0]
            cards.append((percent(value_of(e.summary, metric)[0]), f"{metric} eval/{e.name}"))
    if not cards:
        return na("no metrics and no evaluations in the run directory.")
    return (
        '<div class="cards">'
        + "".join(
            f"<div class=card><b>{escape(v)}</b><span>{escape(label)}</span></div>" for v, label in cards
        )
        + "</div>"
    )


def _write(out: Path, html: str) -> Path:
    """Write atomically, so a report being regenerated is never seen half-written."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, out)
    return out


def _stamp() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


RUN_FILES = ("metrics.jsonl", "eval/", "ablation.json", "config.yaml", "*.done.json")
"""What a run directory of `codefalcon train`, `sft` or `run` holds; a report needs one of them."""


def is_run_dir(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` holds any of `RUN_FILES` (the CLI refuses to report on anything else)."""
    run = Path(path)
    return any(next(run.glob(name.rstrip("/")), None) is not None for name in RUN_FILES)


def write_run_report(run_dir: str | os.PathLike[str], out: str | os.PathLike[str] | None = None) -> Path:
    """Write the run's HTML report (default ``run_dir/report.html``) and return its path.

    Every input is optional; a run directory that does not exist raises FileNotFoundError.
    """
    run = Path(run_dir)
    if not run.is_dir():
        raise FileNotFoundError(f"run directory not found: {run}")
    notes: list[str] = []
    metrics = read_metrics(run / "metrics.jsonl", notes)
    evaluations = find_evaluations(run)
    ablation = read_json(run / "ablation.json", notes)
    sections = [
        ("overview", "Overview", overview_section(metrics, evaluations)),
        ("training", "Training curves", training_section(metrics)),
        ("evaluations", "Evaluations", evaluations_section(evaluations)),
        ("ablation", "Inference strategies", ablation_section(ablation)),
        ("tasks", "Tasks", tasks_section(evaluations, notes)),
        ("config", "Config", config_section(run)),
    ]
    html = page(
        f"codefalcon run: {run.resolve().name}", f"{run.resolve()} · generated {_stamp()}", sections, notes
    )
    return _write(Path(out) if out is not None else run / "report.html", html)


def write_evaluation_report(
    summary: Mapping[str, Any],
    samples_path: str | os.PathLike[str] | None,
    results_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    title: str = "codefalcon evaluation",
) -> Path:
    """Write the report of one evaluation (`summarize` output plus its files) and return ``out``.

    ``samples_path`` may be None (``--samples canonical``): the task list then shows verdicts
    and feedback without programs.
    """
    notes: list[str] = []
    samples = Path(samples_path) if samples_path is not None else None
    if samples is not None and not samples.is_file():
        notes.append(f"{samples}: not found; programs are not shown.")
        samples = None
    results = Path(results_path)
    if results.is_file():
        views = read_task_views(samples, results, notes)
        tasks = task_browser(views)
    else:
        tasks = na(f"{results} not found.")
    sections = [
        ("summary", "Summary", summary_table(summary)),
        ("tasks", "Tasks", tasks),
    ]
    return _write(Path(out), page(title, f"{results} · generated {_stamp()}", sections, notes))
