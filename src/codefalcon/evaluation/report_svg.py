"""Small inline-SVG charts for the HTML report: lines and stacked areas or bars, no libraries.

Every chart is a self-contained ``<svg>`` string with axes, "nice" ticks, a legend and a
``<title>`` per series (the browser shows it on hover). Missing values (None, NaN, inf) break a
line rather than being drawn as zero; in stacked charts they count as zero, since the stack is a
mix of fractions. Text is HTML-escaped, so series names from a metrics file are safe to inline.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from html import escape

# Tableau 10: distinct, colour-blind tolerable, readable on white.
PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)
VERDICT_COLOURS = {
    "passed": "#59a14f",
    "wrong_answer": "#f28e2b",
    "runtime_error": "#e15759",
    "timeout": "#b07aa1",
    "memory_exceeded": "#9c755f",
    "compile_error": "#4e79a7",
    "infrastructure_error": "#bab0ac",
}
MAX_POINTS = 600  # longer series are averaged into this many buckets to keep the file small

Series = Sequence[float | None]


def finite(value: object) -> float | None:
    """The value as a float if it is a finite real number (bools are not), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering [low, high] (steps of 1, 2, 2.5 or 5 x 10^n).

    >>> nice_ticks(0.0, 1.0)
    [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    """
    # a constant series, or one that varies only in its last bits (a ratio of 1 - 1e-16): centre it
    if not high - low > 1e-12 * max(abs(low), abs(high)):
        pad = abs(low) * 0.1 or 1.0
        low, high = low - pad, high + pad
    raw = (high - low) / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step) * step
    digits = max(0, 3 - math.floor(math.log10(step)))  # rounds off float noise, never the step itself
    ticks = [round(first, digits)]
    while ticks[-1] < high - step * 1e-9:
        ticks.append(round(first + step * len(ticks), digits))
    return ticks


def fmt(value: float) -> str:
    """A short tick label: 0.25, 1.5k, 2e-05."""
    if value == 0:
        return "0"
    size = abs(value)
    if size >= 1e4:
        return f"{value / 1e3:.4g}k"
    if size < 1e-3:
        return f"{value:.1e}"
    return f"{value:.4g}"


def downsample(xs: Sequence[float], series: Mapping[str, Series]) -> tuple[list[float], dict[str, Series]]:
    """Average consecutive points into at most `MAX_POINTS` buckets (missing values ignored)."""
    n = len(xs)
    if n <= MAX_POINTS:
        return list(xs), dict(series)
    edges = [round(i * n / MAX_POINTS) for i in range(MAX_POINTS + 1)]
    new_xs = [sum(xs[a:b]) / (b - a) for a, b in itertools.pairwise(edges)]
    out: dict[str, Series] = {}
    for name, values in series.items():
        column: list[float | None] = []
        for a, b in itertools.pairwise(edges):
            kept = [v for v in values[a:b] if v is not None]
            column.append(sum(kept) / len(kept) if kept else None)
        out[name] = column
    return new_xs, out


class _Frame:
    """Plot geometry: maps data coordinates to pixels and draws axes, grid and legend."""

    def __init__(self, width: int, height: int, x_range: tuple[float, float], y_ticks: list[float]):
        self.width, self.height = width, height
        self.left, self.right, self.top, self.bottom = 56, 12, 12, 30
        self.x0, self.x1 = x_range if x_range[1] > x_range[0] else (x_range[0] - 0.5, x_range[0] + 0.5)
        self.y0, self.y1 = y_ticks[0], y_ticks[-1]
        self.y_ticks = y_ticks

    def x(self, value: float) -> float:
        span = self.width - self.left - self.right
        return self.left + (value - self.x0) / (self.x1 - self.x0) * span

    def y(self, value: float) -> float:
        span = self.height - self.top - self.bottom
        return self.top + (1 - (value - self.y0) / (self.y1 - self.y0)) * span

    def axes(self, x_label: str) -> list[str]:
        parts = []
        for tick in self.y_ticks:
            y, end = self.y(tick), self.width - self.right
            parts.append(
                f'<line x1="{self.left}" x2="{end}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
                f'<text x="{self.left - 6}" y="{y + 4:.1f}" text-anchor="end">{fmt(tick)}</text>'
            )
        for tick in nice_ticks(self.x0, self.x1, 6):
            if self.x0 - 1e-9 <= tick <= self.x1 + 1e-9:
                x = self.x(tick)
                base = self.height - self.bottom
                parts.append(
                    f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{base}" y2="{base + 4}" class="axis"/>'
                    f'<text x="{x:.1f}" y="{base + 16}" text-anchor="middle">{fmt(tick)}</text>'
                )
        base = self.height - self.bottom
        parts.append(
            f'<line x1="{self.left}" x2="{self.width - self.right}" y1="{base}" y2="{base}" class="axis"/>'
            f'<text x="{self.width - self.right}" y="{self.height - 2}" text-anchor="end" '
            f'class="label">{escape(x_label)}</text>'
        )
        return parts


def _legend(names: Sequence[str], colours: Mapping[str, str]) -> str:
    """An HTML legend under the chart: wraps by itself, however many series there are."""
    items = "".join(
        f'<span class="key"><i style="background:{colours[n]}"></i>{escape(n)}</span>' for n in names
    )
    return f'<div class="legend">{items}</div>'


def _wrap(svg_body: list[str], frame: _Frame, title: str, legend: str) -> str:
    head = (
        f'<figure class="chart"><figcaption>{escape(title)}</figcaption>'
        if title
        else '<figure class="chart">'
    )
    svg = (
        f'<svg viewBox="0 0 {frame.width} {frame.height}" width="{frame.width}" height="{frame.height}" '
        f'role="img" aria-label="{escape(title)}">{"".join(svg_body)}</svg>'
    )
    return f"{head}{svg}{legend}</figure>"


def colours_for(names: Sequence[str]) -> dict[str, str]:
    """Verdict names get their fixed colour; anything else the next palette colour."""
    out, i = {}, 0
    for name in names:
        leaf = name.rsplit("/", 1)[-1]
        if leaf in VERDICT_COLOURS:
            out[name] = VERDICT_COLOURS[leaf]
        else:
            out[name] = PALETTE[i % len(PALETTE)]
            i += 1
    return out


def _segments(frame: _Frame, xs: Sequence[float], values: Series) -> tuple[str, list[tuple[float, float]]]:
    """Path data with a break at each missing value, plus the isolated points (drawn as dots)."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, v in zip(xs, values, strict=True):
        if v is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((frame.x(x), frame.y(v)))
    path = " ".join("M" + " L".join(f"{px:.1f},{py:.1f}" for px, py in run) for run in runs if len(run) > 1)
    dots = [run[0] for run in runs if len(run) == 1]
    return path, dots


def line_chart(
    xs: Sequence[float],
    series: Mapping[str, Series],
    title: str = "",
    x_label: str = "step",
    width: int = 520,
    height: int = 250,
    y_range: tuple[float, float] | None = None,
) -> str:
    """Lines sharing one x axis; ``series[name][i]`` is the value at ``xs[i]`` or None (a gap)."""
    x_range = (min(xs), max(xs)) if xs else (0.0, 1.0)  # the axis spans every step, not bucket means
    xs, series = downsample(xs, series)
    present = [v for values in series.values() for v in values if v is not None]
    if not xs or not present:
        return f'<p class="na">{escape(title)}: no values to plot.</p>'
    low, high = y_range or (min(present), max(present))
    frame = _Frame(width, height, x_range, nice_ticks(low, high))
    colours = colours_for(list(series))
    body = frame.axes(x_label)
    for name, values in series.items():
        path, dots = _segments(frame, xs, values)
        tip = f"<title>{escape(name)}</title>"
        if path:
            body.append(
                f'<path d="{path}" fill="none" stroke="{colours[name]}" stroke-width="1.6">{tip}</path>'
            )
        body.extend(
            f'<circle cx="{px:.1f}" cy="{py:.1f}" r="2.2" fill="{colours[name]}">{tip}</circle>'
            for px, py in dots
        )
    return _wrap(body, frame, title, _legend(list(series), colours))


def stacked_chart(
    xs: Sequence[float],
    series: Mapping[str, Series],
    title: str = "",
    x_label: str = "step",
    width: int = 520,
    height: int = 250,
    bars: bool = False,
) -> str:
    """Series stacked bottom to top in the given order, as areas or (``bars=True``) as bars.

    Missing values count as zero. The y axis covers the tallest stack, so fractions that sum
    to one fill the chart exactly.
    """
    x_range = (min(xs), max(xs)) if xs else (0.0, 1.0)  # the axis spans every step, not bucket means
    xs, series = downsample(xs, series)
    names = list(series)
    if not xs or not names or all(v is None for values in series.values() for v in values):
        return f'<p class="na">{escape(title)}: no values to plot.</p>'
    tops = [sum(max(series[n][i] or 0.0, 0.0) for n in names) for i in range(len(xs))]
    frame = _Frame(width, height, x_range, nice_ticks(0.0, max(tops) or 1.0))
    colours = colours_for(names)
    body = frame.axes(x_label)
    lower = [0.0] * len(xs)
    half = (frame.x1 - frame.x0) / max(len(xs) - 1, 1) * 0.4 if len(xs) > 1 else 0.4
    for name in names:
        upper = [lo + max(v or 0.0, 0.0) for lo, v in zip(lower, series[name], strict=True)]
        tip = f"<title>{escape(name)}</title>"
        if bars:
            rects = []
            for x, lo, hi in zip(xs, lower, upper, strict=True):
                if hi > lo:
                    left, right = frame.x(x - half), frame.x(x + half)
                    rects.append(
                        f'<rect x="{left:.1f}" y="{frame.y(hi):.1f}" width="{right - left:.1f}" '
                        f'height="{frame.y(lo) - frame.y(hi):.1f}"/>'
                    )
            body.append(f'<g fill="{colours[name]}">{tip}{"".join(rects)}</g>')
        else:
            top = [f"{frame.x(x):.1f},{frame.y(v):.1f}" for x, v in zip(xs, upper, strict=True)]
            bottom = [f"{frame.x(x):.1f},{frame.y(v):.1f}" for x, v in zip(xs, lower, strict=True)]
            points = " ".join(top + bottom[::-1])
            body.append(
                f'<polygon points="{points}" fill="{colours[name]}" fill-opacity="0.85">{tip}</polygon>'
            )
        lower = upper
    return _wrap(body, frame, title, _legend(names, colours))


def share_bar(counts: Mapping[str, int]) -> str:
    """A thin horizontal bar split by count (e.g. verdicts), as HTML with a legend of counts."""
    total = sum(counts.values())
    if total <= 0:
        return '<p class="na">no samples.</p>'
    colours = colours_for(list(counts))
    cells = "".join(
        f'<span style="width:{100 * c / total:.3f}%;background:{colours[n]}" title="{escape(n)}: {c}"></span>'
        for n, c in counts.items()
        if c > 0
    )
    legend = "".join(
        f'<span class="key"><i style="background:{colours[n]}"></i>{escape(n)} {c}</span>'
        for n, c in counts.items()
        if c > 0
    )
    return f'<div class="sharebar">{cells}</div><div class="legend">{legend}</div>'
