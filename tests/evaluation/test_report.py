"""The HTML report: sections, escaping, missing parts, and a real headless browser (chromium)."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from codefalcon.evaluation import Sample, summarize, write_results
from codefalcon.evaluation.report import metric_group, write_evaluation_report, write_run_report
from codefalcon.evaluation.report_data import read_metrics
from codefalcon.evaluation.report_html import SCRIPT
from codefalcon.evaluation.report_svg import MAX_POINTS, line_chart, nice_ticks
from codefalcon.execution.result import ExecutionResult, TestResult, Verdict

EVIL = "</script><b>x & y</b>"
EVIL_PROGRAM = f'def f(x):\n    return "{EVIL}" if x < 0 else x\n'
V = Verdict
N_TASKS = 6
N_STEPS = 20


# ---------------------------------------------------------------- a fake run directory


def _result(verdict: Verdict, actual: str = "5") -> ExecutionResult:
    ok = TestResult(0, V.PASSED, input="1\n", expected="2", actual="2")
    if verdict is V.PASSED:
        return ExecutionResult(V.PASSED, (ok, TestResult(1, V.PASSED)), 2)
    if verdict is V.WRONG_ANSWER:
        bad = TestResult(
            1, V.WRONG_ANSWER, message="output differs", input="3 < 4\n", expected="6", actual=actual
        )
        return ExecutionResult(verdict, (ok, bad), 2)
    if verdict is V.RUNTIME_ERROR:
        bad = TestResult(
            0, V.RUNTIME_ERROR, error_type="ZeroDivisionError", message="division by zero", line=2
        )
        return ExecutionResult(verdict, (bad,), 2)  # stopped at the first failure
    bad = TestResult(0, V.COMPILE_ERROR, error_type="SyntaxError", message="invalid syntax <here>", line=1)
    return ExecutionResult(verdict, (bad,), 2)


def _write_eval(folder: Path, outcomes: list[list[Verdict]], evil: bool) -> dict:
    """samples.jsonl, results.jsonl (the shipped writer) and summary.json (the shipped summarize)."""
    folder.mkdir(parents=True)
    samples, results, per_task = [], [], {}
    lines = []
    for i, verdicts in enumerate(outcomes):
        task_id = f"T/{i}"
        for j, verdict in enumerate(verdicts):
            program = (
                EVIL_PROGRAM if (evil and i == 0 and j == 0) else f"def f(x):\n    return x + {i * 10 + j}\n"
            )
            result = _result(verdict, actual=EVIL if (evil and i == 0 and j == 0) else "5")
            samples.append(Sample(task_id, program, len(samples) + 1, j))
            results.append(result)
            per_task.setdefault(task_id, []).append(result)
            lines.append(json.dumps({"task_id": task_id, "completion": "", "solution": program}))
    (folder / "samples.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    write_results(folder / "results.jsonl", samples, results)
    difficulty = {f"T/{i}": "introductory" if i % 2 == 0 else "interview" for i in range(len(outcomes))}
    summary = summarize(per_task, ks=(1, 2), difficulty_of=difficulty)
    (folder / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    return summary


BEFORE = [
    [V.WRONG_ANSWER, V.RUNTIME_ERROR],
    [V.PASSED, V.COMPILE_ERROR],
    [V.WRONG_ANSWER, V.WRONG_ANSWER],
] * 2
AFTER = [[V.WRONG_ANSWER, V.PASSED], [V.PASSED, V.PASSED], [V.RUNTIME_ERROR, V.WRONG_ANSWER]] * 2


def _metrics_line(step: int) -> dict:
    t = step / (N_STEPS - 1)
    passed = 0.2 + 0.5 * t
    return {
        "step": step,
        "reward/total": passed - 0.1 * (1 - t),
        "reward/binary": passed,
        "reward/syntax": 0.9 + 0.05 * math.sin(step),
        "exec/pass_rate": passed,
        "loss/total": 1.0 - 0.6 * t,
        "loss/grpo/kl": 0.01 * step,
        "kl/beta": 0.04,
        "verdict/passed": passed,
        "verdict/wrong_answer": (1 - passed) * 0.5,
        "verdict/runtime_error": (1 - passed) * 0.3,
        "verdict/compile_error": (1 - passed) * 0.2,
        "time/generation": 3.0 + 0.1 * step,
        "time/execution": 1.5,
        "time/update": 2.0,
        "optim/lr": 1e-5 * (1 - t),
        "optim/grad_norm": None if step == 7 else 1.0 + t,
        "note": "strings are not charted",
        "other/<i>odd</i>": step,
    }


def make_run(root: Path, evil: bool = True) -> Path:
    """A complete fake run: config, 20 steps of metrics (one malformed line), two evals, ablation."""
    run = root / "run"
    run.mkdir()
    (run / "config.yaml").write_text("recipe: grpo\nmodel: tiny  # a < b & c\nsteps: 20\n", encoding="utf-8")
    lines = [json.dumps(_metrics_line(s)) for s in range(N_STEPS)]
    lines.insert(5, '{"step": 5, "reward/total": ')  # torn line
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    _write_eval(run / "eval" / "before", BEFORE, evil=False)
    after = _write_eval(run / "eval" / "after", AFTER, evil=evil)
    strategies = {
        "sample": {**after, "n_at_k": {"1@2": {"value": 0.5, "n_tasks": 6, "reason": None}}},
        "repair": {**after, "pass_at_k": {"pass@1": {"value": 0.75, "n_tasks": 6, "reason": None}}},
        "memory": {
            "n_samples": 12,
            "pass_at_k": {"pass@1": {"value": None, "n_tasks": 6, "reason": "k > n"}},
        },
    }
    (run / "ablation.json").write_text(
        json.dumps({"strategies": strategies, "budget": "2 programs per task"})
    )
    return run


class Page(HTMLParser):
    """Collects ids, text, scripts, sample rows and bold texts of a document."""

    def __init__(self, html: str):
        super().__init__()
        self.ids: set[str] = set()
        self.text: list[str] = []
        self.scripts: list[str] = []
        self.samples: list[dict] = []
        self.tags: list[str] = []
        self._in_script = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "div" and a.get("class") == "sample":
            self.samples.append(a)
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        (self.scripts if self._in_script else self.text).append(data)

    @property
    def all_text(self) -> str:
        return "".join(self.text)


# ---------------------------------------------------------------- the report's content


def test_run_report_has_every_section_and_escapes_programs(tmp_path):
    run = make_run(tmp_path)
    out = write_run_report(run)
    assert out == run / "report.html"
    html = out.read_text(encoding="utf-8")
    doc = Page(html)
    sections = {"overview", "training", "evaluations", "ablation", "tasks", "config", "notes"}
    charts = {"reward", "pass-rate", "kl", "loss", "verdict-mix", "time", "other-metrics", "before-after"}
    assert sections | charts <= doc.ids
    # The program and the feedback are shown as text, and never become markup.
    assert EVIL in doc.all_text
    assert html.count("</script>") == 1  # only the report's own script closes
    assert "<b>x" not in html and "&lt;/script&gt;&lt;b&gt;x &amp; y&lt;/b&gt;" in html
    assert doc.scripts == [SCRIPT]  # no data leaked into the script element
    assert "&lt;i&gt;odd&lt;/i&gt;" in html and "<i>odd" not in html  # metric names too
    assert "a < b & c" in doc.all_text  # the config block
    # Every after-sample is listed, with its verdict.
    assert len(doc.samples) == sum(map(len, AFTER))
    assert sum(s["data-passed"] == "1" for s in doc.samples) == sum(v is V.PASSED for vs in AFTER for v in vs)
    assert "skipped 1 malformed line(s) (line 6)" in doc.all_text
    assert html.count("<svg") >= 8 and "Not available" not in doc.all_text


def test_before_after_and_ablation_tables(tmp_path):
    doc = Page(write_run_report(make_run(tmp_path)).read_text(encoding="utf-8"))
    text = doc.all_text
    # pass@1 before: per task (0, .5, 0) * 2 -> 1/6 = 16.7%; after (.5, 1, 0) * 2 -> 50.0%.
    assert "16.7%" in text and "50.0%" in text and "+33.3 pp" in text
    assert "introductory" in text and "interview" in text
    assert "Budget: 2 programs per task" in text
    for strategy in ("sample", "repair", "memory"):
        assert strategy in text
    assert "1@2" in text and "75.0%" in text


def test_greedy_before_after_gets_a_paired_interval(tmp_path):
    run = tmp_path / "greedy"
    _write_eval(run / "eval" / "before", [[V.PASSED], [V.WRONG_ANSWER], [V.WRONG_ANSWER]] * 4, evil=False)
    _write_eval(run / "eval" / "after", [[V.PASSED], [V.PASSED], [V.WRONG_ANSWER]] * 4, evil=False)
    text = Page(write_run_report(run).read_text(encoding="utf-8")).all_text
    # 4 of 12 -> 8 of 12, no task lost: McNemar p = 2 / 2^4 = 0.125
    assert "33.3% -> 66.7% on 12 tasks; gain +33.3%" in text
    assert "McNemar p = 0.125 (4 tasks solved only after, 0 only before)" in text
    assert "the interval excludes zero" in text
    # sampled evaluations (two per task, as make_run writes) get a note instead
    sampled = Page(write_run_report(make_run(tmp_path)).read_text(encoding="utf-8")).all_text
    assert "paired interval is given for greedy evaluations" in sampled


def test_missing_parts_are_notes_not_crashes(tmp_path):
    run = tmp_path / "empty"
    run.mkdir()
    text = Page(write_run_report(run, out=tmp_path / "r.html").read_text(encoding="utf-8")).all_text
    for missing in ("no metrics.jsonl", "no eval/<name>/summary.json", "no ablation.json", "no config.yaml"):
        assert f"Not available: {missing}" in text
    # An evaluation with results but no samples or summary: verdicts without programs.
    folder = run / "eval" / "after"
    _write_eval(folder, AFTER, evil=False)
    (folder / "samples.jsonl").unlink()
    (folder / "summary.json").write_text("[1, 2]")
    (run / "metrics.jsonl").write_text("garbage\n")
    (run / "ablation.json").write_text('{"budget": 3}')
    doc = Page(write_run_report(run).read_text(encoding="utf-8"))
    assert len(doc.samples) == sum(map(len, AFTER))
    for note in (
        "Programs are not shown: samples.jsonl is missing",
        "eval/after/summary.json is missing or unreadable",
        "metrics.jsonl has no readable records",
        'ablation.json has no "strategies" object',
    ):
        assert note in doc.all_text
    with pytest.raises(FileNotFoundError, match="run directory not found"):
        write_run_report(tmp_path / "nowhere")


def test_evaluation_report(tmp_path):
    summary = _write_eval(tmp_path / "e", AFTER, evil=True)
    out = write_evaluation_report(
        summary,
        tmp_path / "e" / "samples.jsonl",
        tmp_path / "e" / "results.jsonl",
        tmp_path / "x" / "e.html",
        "mbpp",
    )
    html = out.read_text(encoding="utf-8")
    doc = Page(html)
    assert {"summary", "tasks"} <= doc.ids and EVIL in doc.all_text and html.count("</script>") == 1
    out = write_evaluation_report(summary, None, tmp_path / "e" / "results.jsonl", tmp_path / "e2.html")
    assert "program not available" in out.read_text(encoding="utf-8")


def test_read_metrics_merges_steps_and_keeps_gaps(tmp_path):
    path = tmp_path / "metrics.jsonl"
    rows = [
        '{"step": 2, "a": 1, "b": NaN}',
        '{"step": 1, "a": 0}',
        "[1]",
        '{"a": 5}',
        '{"step": 2, "a": 3, "s": "x"}',
    ]
    path.write_text("\n".join(rows))
    notes: list[str] = []
    metrics = read_metrics(path, notes)
    assert metrics.steps == [1, 2] and metrics.columns == {"a": [0.0, 3.0], "b": [None, None]}
    assert notes == [
        "metrics.jsonl: skipped 1 malformed line(s) (line 3).",
        "metrics.jsonl: skipped 1 line(s) without a numeric step.",
    ]


def test_metric_groups_and_chart_helpers():
    keys = ["reward/total", "exec/pass_rate", "loss/grpo/kl", "kl/beta", "loss/policy", "verdict/timeout"]
    assert [metric_group(k) for k in keys] == ["reward", "pass_rate", "kl", "kl", "loss", "verdict"]
    assert metric_group("time/update") == "time" and metric_group("skill/level") == "other"
    assert nice_ticks(0.03, 0.95) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    # A gap splits the line in two runs; a lone point between gaps is a dot.
    svg = line_chart([0, 1, 2, 3, 4, 5], {"a": [1.0, 2.0, None, 3.0, None, 4.0]}, "t<")
    assert svg.count("M") == 1 and svg.count("<circle") == 2 and "t&lt;" in svg
    assert "no values" in line_chart([0, 1], {"a": [None, None]}, "empty")
    long = line_chart(list(range(5000)), {"a": [float(i % 7) for i in range(5000)]})
    assert long.count(" L") == MAX_POINTS - 1  # averaged into buckets, not 5000 points


@pytest.mark.parametrize(
    ("low", "high"), [(0.9999999999999999, 1.0), (1e-14, 3e-14), (5.0, 5.0), (0.0, 0.0), (-3.0, 7.0)]
)
def test_nice_ticks_cover_ranges_of_any_width(low: float, high: float):
    # A GRPO ratio that is 1 up to its last bit once gave no ticks at all (an IndexError in the
    # report); values below 1e-12 were rounded to 0 and never reached `high`.
    ticks = nice_ticks(low, high)
    assert 3 <= len(ticks) <= 8
    assert ticks[0] <= low and ticks[-1] >= high
    assert ticks == sorted(set(ticks))


# ---------------------------------------------------------------- a real browser


def chromium() -> str:
    """Debian's chromium; a missing browser fails under CI and skips elsewhere."""
    found = shutil.which("chromium")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed; CI must run `apt-get install -y chromium`")
    pytest.skip("chromium is not installed (apt-get install chromium); under CI=1 this test fails instead")


def test_missing_chromium_fails_under_ci_and_skips_elsewhere(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="apt-get install -y chromium"):
        chromium()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        chromium()


def run_chromium(browser: str, profile: Path, url: str, *mode: str) -> subprocess.CompletedProcess:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--enable-logging=stderr",
        f"--user-data-dir={profile}",
        "--window-size=1280,2000",
    ]
    done = subprocess.run([browser, *flags, *mode, url], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def take_screenshot(report: Path, png: Path, profile: Path) -> None:
    run_chromium(chromium(), profile, report.as_uri(), f"--screenshot={png}")


@pytest.mark.slow
def test_report_renders_in_chromium(tmp_path):
    browser = chromium()
    report = write_run_report(make_run(tmp_path))
    png = tmp_path / "report.png"
    take_screenshot(report, png, tmp_path / "profile")
    assert png.is_file() and png.stat().st_size > 20_000
    try:
        from PIL import Image
    except ImportError:  # without PIL, size alone says it is not a blank page
        Image = None
    if Image is not None:
        with Image.open(png) as image:
            assert image.size == (1280, 2000)
            colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
            assert colours is None or len(colours) > 50  # text, charts and badges, not one colour

    # The script ran to the end (it marks <body>), and printed no error.
    done = run_chromium(browser, tmp_path / "profile", report.as_uri(), "--dump-dom")
    assert 'data-report-ready="1"' in done.stdout, done.stderr[-2000:]
    assert "Uncaught" not in done.stderr, done.stderr[-2000:]
    doc = Page(done.stdout)
    assert len(doc.samples) == sum(map(len, AFTER)) and not any("hidden" in s for s in doc.samples)

    # Filters from the URL hash: failed samples only; then passed samples of one task.
    failed = sum(v is not V.PASSED for vs in AFTER for v in vs)
    done = run_chromium(browser, tmp_path / "profile", report.as_uri() + "#filter=failed", "--dump-dom")
    shown = [s for s in Page(done.stdout).samples if "hidden" not in s]
    assert len(shown) == failed and all(s["data-passed"] == "0" for s in shown)
    assert f'data-shown-samples="{failed}"' in done.stdout
    done = run_chromium(browser, tmp_path / "profile", report.as_uri() + "#filter=passed&q=t/1", "--dump-dom")
    shown = [s for s in Page(done.stdout).samples if "hidden" not in s]
    assert len(shown) == 2 and all(s["data-passed"] == "1" for s in shown)  # T/1 passes twice
