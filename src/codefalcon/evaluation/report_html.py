"""HTML building blocks of the report: page shell, metric tables and the task browser.

All text that comes from files (task ids, programs, messages, metric names) goes through
`html.escape`, so a program containing ``</script>`` or ``<b>`` is shown, never interpreted.
The page carries its own CSS and a small vanilla script; it makes no network request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from codefalcon.evaluation.report_data import MAX_PROGRAM_CHARS, SampleView, TaskViews
from codefalcon.evaluation.report_svg import VERDICT_COLOURS, share_bar

MAX_FIELD_CHARS = 2000  # per test input / expected / actual / message shown
MAX_FAILED_TESTS = 10  # failing tests listed per sample

CSS = """
:root { --fg:#1f2328; --muted:#656d76; --line:#d0d7de; --bg:#f6f8fa; --good:#1a7f37; --bad:#cf222e; }
* { box-sizing: border-box; }
body { font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
  margin: 0; background: #fff; }
main { max-width: 1120px; margin: 0 auto; padding: 16px 24px 64px; }
h1 { font-size: 24px; margin: 8px 0 4px; } h2 { font-size: 19px; margin: 32px 0 8px;
  padding-bottom: 4px; border-bottom: 1px solid var(--line); } h3 { font-size: 15px; margin: 20px 0 6px; }
.sub, .na, .note { color: var(--muted); } .na { font-style: italic; }
nav.toc { display: flex; flex-wrap: wrap; gap: 4px 16px; padding: 8px 0; border-bottom: 1px solid var(--line);
  position: sticky; top: 0; background: #fff; z-index: 2; }
nav.toc a { color: var(--fg); text-decoration: none; } nav.toc a:hover { text-decoration: underline; }
.notes { background: #fff8c5; border: 1px solid #d4a72c66; border-radius: 6px; padding: 6px 12px; }
.notes li { margin: 2px 0; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 12px 0; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 8px 14px; min-width: 150px; }
.card b { display: block; font-size: 22px; } .card span { color: var(--muted); font-size: 12px; }
table { border-collapse: collapse; margin: 6px 0 12px; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid var(--line); padding: 3px 9px; text-align: right; vertical-align: top; }
th { background: var(--bg); } td:first-child, th:first-child { text-align: left; }
td.best { font-weight: 700; } .up { color: var(--good); } .down { color: var(--bad); }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(500px, 1fr)); gap: 8px 24px; }
.charts.small { grid-template-columns: repeat(auto-fill, minmax(340px, 1fr)); }
figure.chart { margin: 4px 0 8px; } figure.chart svg { max-width: 100%; height: auto; display: block; }
figcaption { font-weight: 600; font-size: 13px; }
svg text { font: 10px system-ui, sans-serif; fill: var(--muted); }
svg .grid { stroke: #eaeef2; } svg .axis { stroke: #8c959f; }
.legend { display: flex; flex-wrap: wrap; gap: 2px 12px; font-size: 12px; color: var(--muted); }
.key i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; border-radius: 2px; }
.sharebar { display: flex; height: 12px; border-radius: 3px; overflow: hidden; max-width: 640px; }
pre { background: var(--bg); border: 1px solid var(--line); border-radius: 6px; padding: 8px;
  overflow: auto; max-height: 420px; font: 12px/1.45 ui-monospace, SFMono-Regular, Menlo, monospace; }
table.tests td { text-align: left; }
td pre { margin: 0; padding: 2px 4px; max-height: 160px; max-width: 320px; white-space: pre-wrap; }
.badge { display: inline-block; padding: 0 7px; border-radius: 10px; color: #fff; font-size: 12px; }
.filters { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; margin: 8px 0;
  position: sticky; top: 38px; background: #fff; padding: 4px 0; z-index: 1; }
.filters input { width: 280px; padding: 4px 8px; } .filters select, .filters button { padding: 3px 8px; }
details.task { border: 1px solid var(--line); border-radius: 6px; margin: 4px 0; padding: 2px 10px; }
details.task > summary { cursor: pointer; padding: 2px 0; }
details.task[open] > summary { margin-bottom: 6px; }
.sample { border-top: 1px dashed var(--line); padding: 6px 0; }
.sample-head { display: flex; gap: 10px; align-items: center; }
[hidden] { display: none !important; }
"""

# Runs at the end of <body>. The hash sets filters (#filter=failed&q=HumanEval/1), so a link
# can open the page pre-filtered; data-report-ready marks a run that reached the end unharmed.
SCRIPT = """
(function () {
  var q = document.getElementById("task-q");
  var status = document.getElementById("task-status");
  var count = document.getElementById("task-count");
  function apply() {
    if (!q) return;
    var text = q.value.trim().toLowerCase(), want = status.value, shownTasks = 0, shownSamples = 0;
    var tasks = document.querySelectorAll("details.task");
    for (var i = 0; i < tasks.length; i++) {
      var task = tasks[i], id = task.getAttribute("data-task").toLowerCase(), visible = 0;
      var samples = task.querySelectorAll(".sample");
      for (var j = 0; j < samples.length; j++) {
        var s = samples[j], passed = s.getAttribute("data-passed") === "1";
        var ok = (want === "all" || (want === "passed") === passed) &&
          (!text || id.indexOf(text) >= 0 || s.getAttribute("data-verdict").indexOf(text) >= 0);
        s.hidden = !ok; visible += ok ? 1 : 0;
      }
      task.hidden = visible === 0;
      shownTasks += visible ? 1 : 0; shownSamples += visible;
    }
    count.textContent = shownTasks + " of " + tasks.length + " tasks, " + shownSamples + " samples shown";
    count.setAttribute("data-shown-samples", String(shownSamples));
  }
  function fromHash() {
    if (!q) return;
    var parts = location.hash.replace(/^#/, "").split("&");
    for (var i = 0; i < parts.length; i++) {
      var kv = parts[i].split("="), value = decodeURIComponent(kv.slice(1).join("=") || "");
      if (kv[0] === "filter" && ["all", "passed", "failed"].indexOf(value) >= 0) status.value = value;
      if (kv[0] === "q") q.value = value;
    }
    apply();
  }
  function openAll(open) {
    var tasks = document.querySelectorAll("details.task");
    for (var i = 0; i < tasks.length; i++) if (!tasks[i].hidden) tasks[i].open = open;
  }
  if (q) {
    q.addEventListener("input", apply);
    status.addEventListener("change", apply);
    document.getElementById("expand-all").addEventListener("click", function () { openAll(true); });
    document.getElementById("collapse-all").addEventListener("click", function () { openAll(false); });
    window.addEventListener("hashchange", fromHash);
  }
  fromHash();
  document.body.setAttribute("data-report-ready", "1");
})();
"""


def page(title: str, subtitle: str, sections: Sequence[tuple[str, str, str]], notes: Sequence[str]) -> str:
    """The whole document: header, table of contents, notes, then (anchor, heading, html) sections."""
    toc = "".join(f'<a href="#{a}">{escape(h)}</a>' for a, h, _ in sections)
    note_html = ""
    if notes:
        items = "".join(f"<li>{escape(n)}</li>" for n in notes)
        note_html = f'<div class="notes" id="notes"><b>Notes</b><ul>{items}</ul></div>'
    body = "".join(f'<section id="{a}"><h2>{escape(h)}</h2>{html}</section>' for a, h, html in sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body><main>"
        f'<h1>{escape(title)}</h1><div class="sub">{escape(subtitle)}</div>'
        f'<nav class="toc">{toc}</nav>{note_html}{body}</main>'
        f"<script>{SCRIPT}</script></body></html>\n"
    )


def na(text: str) -> str:
    return f'<p class="na">Not available: {escape(text)}</p>'


def percent(value: Any) -> str:
    """A fraction as a percentage with one decimal; anything else as an em dash."""
    return f"{100 * value:.1f}%" if isinstance(value, int | float) and not isinstance(value, bool) else "—"


def delta(before: Any, after: Any) -> str:
    """The change in percentage points, coloured; an em dash when either side is undefined."""
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (before, after))
    if not numbers:
        return "<td>—</td>"
    change = 100 * (after - before)
    cls = "up" if change > 0 else "down" if change < 0 else ""
    return f'<td class="{cls}">{change:+.1f} pp</td>'


def metric_names(summaries: Sequence[Mapping[str, Any] | None]) -> list[str]:
    """pass@k and n@k names across summaries, sorted by k then by kind."""
    names: dict[str, None] = {}
    for s in summaries:
        for group in ("pass_at_k", "n_at_k"):
            table = (s or {}).get(group)
            if isinstance(table, Mapping):
                names.update(dict.fromkeys(table))
    return sorted(names, key=lambda n: (_k_of(n), n))


def _k_of(name: str) -> float:
    try:
        return float(name.split("@")[-1])
    except ValueError:
        return float("inf")


def value_of(summary: Mapping[str, Any] | None, name: str) -> tuple[Any, str | None]:
    """(value, reason) of a pass@k / n@k entry or a plain key such as ``strict_accuracy``."""
    if not summary:
        return None, "missing"
    for group in ("pass_at_k", "n_at_k"):
        table = summary.get(group)
        if isinstance(table, Mapping) and name in table:
            entry = table[name]
            if isinstance(entry, Mapping):
                return entry.get("value"), entry.get("reason")
            return entry, None
    return summary.get(name), summary.get("reason")


def cell(summary: Mapping[str, Any] | None, name: str, best: bool = False) -> str:
    value, reason = value_of(summary, name)
    tip = f' title="{escape(str(reason))}"' if value is None and reason else ""
    return f"<td{tip}{' class=best' if best else ''}>{percent(value)}</td>"


RATE_KEYS = ("strict_accuracy", "avg_pass_rate")


def summary_table(summary: Mapping[str, Any]) -> str:
    """One evaluation: counts, pass@k, accuracies, the verdict mix, and the per-difficulty table."""
    names = metric_names([summary]) + list(RATE_KEYS)
    rows = "".join(f"<tr><td>{escape(n)}</td>{cell(summary, n)}</tr>" for n in names)
    counts = f"{summary.get('n_tasks', '?')} tasks, {summary.get('n_samples', '?')} samples"
    if summary.get("n_unscored"):
        counts += f", {summary['n_unscored']} unscored (infrastructure errors)"
    verdicts = summary.get("verdicts")
    mix = share_bar({str(k): int(v) for k, v in verdicts.items()}) if isinstance(verdicts, Mapping) else ""
    html = f"<p>{escape(counts)}</p><table><tr><th>metric</th><th>value</th></tr>{rows}</table>{mix}"
    by_difficulty = summary.get("by_difficulty")
    if isinstance(by_difficulty, Mapping) and by_difficulty:
        html += "<h3>By difficulty</h3>" + difficulty_table(by_difficulty)
    return html


def difficulty_table(by_difficulty: Mapping[str, Any]) -> str:
    names = metric_names(list(by_difficulty.values())) + list(RATE_KEYS)
    head = "".join(f"<th>{escape(n)}</th>" for n in ["difficulty", "tasks", *names])
    rows = "".join(
        f"<tr><td>{escape(str(d))}</td><td>{escape(str((s or {}).get('n_tasks', '?')))}</td>"
        + "".join(cell(s, n) for n in names)
        + "</tr>"
        for d, s in by_difficulty.items()
    )
    return f"<table><tr>{head}</tr>{rows}</table>"


def comparison_table(before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    """Before / after / change for each metric, then per difficulty (difficulties of either)."""
    names = metric_names([before, after]) + list(RATE_KEYS)
    rows = "".join(
        f"<tr><td>{escape(n)}</td>{cell(before, n)}{cell(after, n)}"
        f"{delta(value_of(before, n)[0], value_of(after, n)[0])}</tr>"
        for n in names
    )
    html = f"<table><tr><th>metric</th><th>before</th><th>after</th><th>change</th></tr>{rows}</table>"
    bd, ad = before.get("by_difficulty") or {}, after.get("by_difficulty") or {}
    difficulties = list(dict.fromkeys([*bd, *ad]))
    if len(difficulties) > 1 or (difficulties and difficulties != ["unspecified"]):
        metrics = metric_names([*bd.values(), *ad.values()]) + list(RATE_KEYS)
        head = "".join(f'<th colspan="3">{escape(n)}</th>' for n in metrics)
        sub = "<th>before</th><th>after</th><th>change</th>" * len(metrics)
        body = "".join(
            f"<tr><td>{escape(str(d))}</td>"
            + "".join(
                cell(bd.get(d), n)
                + cell(ad.get(d), n)
                + delta(value_of(bd.get(d), n)[0], value_of(ad.get(d), n)[0])
                for n in metrics
            )
            + "</tr>"
            for d in difficulties
        )
        head = f'<tr><th rowspan="2">difficulty</th>{head}</tr><tr>{sub}</tr>'
        html += f"<h3>By difficulty</h3><table>{head}{body}</table>"
    return html


def badge(verdict: str) -> str:
    colour = VERDICT_COLOURS.get(verdict, "#6e7781")
    return f'<span class="badge" style="background:{colour}">{escape(verdict)}</span>'


def _clip(text: Any, limit: int) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= limit else text[:limit] + f"\n... ({len(text) - limit} more characters)"


def _field(value: Any, pre: bool) -> str:
    if value is None:
        return "<td></td>"
    text = escape(_clip(value, MAX_FIELD_CHARS))
    return f"<td><pre>{text}</pre></td>" if pre else f"<td>{text}</td>"


def _tests_html(sample: SampleView) -> str:
    """Counts, then a table of the failing tests with their feedback."""
    passed = sum(1 for t in sample.tests if t.get("verdict") == "passed")
    failing = [t for t in sample.tests if t.get("verdict") != "passed"]
    line = f"{passed} of {sample.n_tests} tests passed"
    if len(sample.tests) < sample.n_tests:
        line += f" ({sample.n_tests - len(sample.tests)} not run: stopped at the first failure)"
    if not failing:
        return f'<div class="note">{escape(line)}</div>'
    fields = ("error_type", "line", "message", "input", "expected", "actual")
    head = "".join(f"<th>{f}</th>" for f in ("test", "verdict", *fields))
    rows = ""
    for t in failing[:MAX_FAILED_TESTS]:
        cells = "".join(_field(t.get(f), pre=f not in ("error_type", "line")) for f in fields)
        index = escape(str(t.get("index", "?")))
        rows += f"<tr><td>#{index}</td><td>{badge(str(t.get('verdict')))}</td>{cells}</tr>"
    more = len(failing) - MAX_FAILED_TESTS
    extra = f'<div class="note">... and {more} more failing tests</div>' if more > 0 else ""
    return f'<div class="note">{escape(line)}</div><table class="tests"><tr>{head}</tr>{rows}</table>{extra}'


def _sample_html(sample: SampleView) -> str:
    if sample.program is None:
        program = '<p class="na">program not available (no matching line in samples.jsonl)</p>'
    else:
        label = "completion (appended to the task's prompt)" if sample.program_kind == "completion" else ""
        label_html = f'<div class="note">{escape(label)}</div>' if label else ""
        program = f'{label_html}<pre class="program">{escape(_clip(sample.program, MAX_PROGRAM_CHARS))}</pre>'
    return (
        f'<div class="sample" data-verdict="{escape(sample.verdict)}" data-passed="{int(sample.passed)}">'
        f'<div class="sample-head"><b>sample #{sample.completion_id}</b>{badge(sample.verdict)}</div>'
        f"{program}{_tests_html(sample)}</div>"
    )


def task_browser(views: TaskViews) -> str:
    """Every task as a collapsible block of its samples, with the filter bar the script drives."""
    if not views.tasks:
        return na("the results file has no readable lines.")
    blocks = []
    for task_id, samples in views.tasks.items():
        n_passed = sum(s.passed for s in samples)
        verdicts = " ".join(badge(v) for v in dict.fromkeys(s.verdict for s in samples))
        blocks.append(
            f'<details class="task" data-task="{escape(task_id)}"><summary><code>{escape(task_id)}</code> '
            f"&nbsp;{n_passed}/{len(samples)} passed &nbsp;{verdicts}</summary>"
            + "".join(_sample_html(s) for s in samples)
            + "</details>"
        )
    limits = ""
    if views.hidden_tasks or views.hidden_samples:
        limits = na(
            f"{views.hidden_tasks} more tasks and {views.hidden_samples} more samples are not listed "
            "(the page keeps to 2000 tasks and 20 samples per task); see results.jsonl."
        )
    filters = (
        '<div class="filters"><input id="task-q" type="search" placeholder="filter by task id or verdict">'
        '<select id="task-status"><option value="all">all samples</option><option value="passed">passed'
        '</option><option value="failed">failed</option></select><button id="expand-all">expand all</button>'
        '<button id="collapse-all">collapse all</button><span id="task-count" class="note"></span></div>'
    )
    return f'{filters}{limits}<div id="task-list">{"".join(blocks)}</div>'
