"""Server-rendered SVG charts: no script, no external asset, readable by screen readers.

Every chart is an ``<svg role="img">`` labelled by its own ``<title>`` and ``<desc>``; the
page shows the same numbers in a table next to it (the charts' text alternative).  All
text is escaped here, since the result is inserted into a page as markup.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

__all__ = ["Series", "bar_chart", "line_chart"]

WIDTH, HEIGHT = 560, 200
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 12, 40
_ids = itertools.count(1)

#: colour-blind safe pair, both ≥ 4.5:1 against white
COLOURS = ("#1f5fa8", "#9a4a00")


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    values: Sequence[float]


def _frame(title: str, desc: str, body: list[str]) -> Markup:
    n = next(_ids)
    head = (f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
            f'aria-labelledby="chart-t{n} chart-d{n}" xmlns="http://www.w3.org/2000/svg">'
            f'<title id="chart-t{n}">{escape(title)}</title>'
            f'<desc id="chart-d{n}">{escape(desc)}</desc>')
    return Markup(head + "".join(body) + "</svg>")  # noqa: S704 - every part escaped above


def _axes(y_max: float, y_format: str) -> list[str]:
    plot_h = HEIGHT - TOP - BOTTOM
    out = [f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{HEIGHT - BOTTOM}" class="axis"/>',
           f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - RIGHT}" '
           f'y2="{HEIGHT - BOTTOM}" class="axis"/>']
    for frac in (0.0, 0.5, 1.0):
        y = TOP + plot_h * (1 - frac)
        label = y_format.format(y_max * frac)
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" '
                   f'class="tick">{escape(label)}</text>')
        if frac:
            out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" '
                       'class="grid"/>')
    return out


def _x_labels(labels: Sequence[str], xs: Sequence[float]) -> list[str]:
    step = max(1, len(labels) // 7)
    return [f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" '
            f'class="tick">{escape(label)}</text>'
            for i, (label, x) in enumerate(zip(labels, xs, strict=True))
            if i % step == 0 and label]


def _time_xs(times: Sequence[float], plot_w: float) -> list[float]:
    """x of each time, proportional to time on one clock (evenly spread if all equal)."""
    lo, hi = min(times), max(times)
    if hi <= lo:
        return [LEFT + plot_w * (i + 0.5) / len(times) for i in range(len(times))]
    pad = plot_w * 0.04
    return [LEFT + pad + (plot_w - 2 * pad) * (t - lo) / (hi - lo) for t in times]


def line_chart(title: str, desc: str, labels: Sequence[str], values: Sequence[float], *,
               y_max: float = 1.0, y_format: str = "{:.1f}",
               times: Sequence[float] | None = None) -> Markup:
    """One series over time (e.g. a partner's reliability, 0..1).  With ``times`` (one
    clock, any unit) a point's x is proportional to its time and only the labels of
    points at least a label's width apart are drawn; else points are evenly spread."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    n = len(values)
    xs = (_time_xs(times, plot_w) if times is not None and len(times) == n
          else [LEFT + (plot_w * (i + 0.5) / n) for i in range(n)])
    if times is not None and len(times) == n:
        shown: list[str] = []
        last, last_label = -1e9, ""
        for label, x in zip(labels, xs, strict=True):
            keep = x - last >= 44 and label != last_label
            shown.append(label if keep else "")
            if keep:
                last, last_label = x, label
        labels = shown
    ys = [TOP + plot_h * (1 - min(max(v / y_max, 0.0), 1.0)) for v in values]
    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))
    body = _axes(y_max, y_format)
    body.append(f'<polyline points="{points}" fill="none" stroke="{COLOURS[0]}" '
                'stroke-width="2"/>')
    body.extend(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{COLOURS[0]}"/>'
                for x, y in zip(xs, ys, strict=True))
    body.extend(_x_labels(labels, xs))
    return _frame(title, desc, body)


def bar_chart(title: str, desc: str, labels: Sequence[str], series: Sequence[Series]) -> Markup:
    """Grouped bars per label (e.g. objects sent and received per day)."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    n, k = max(1, len(labels)), max(1, len(series))
    top = max([1.0, *(v for s in series for v in s.values)])
    slot = plot_w / n
    bar = max(1.0, slot * 0.8 / k)
    body = _axes(top, "{:.0f}")
    for j, s in enumerate(series):
        colour = COLOURS[j % len(COLOURS)]
        for i, v in enumerate(s.values):
            h = plot_h * v / top
            x = LEFT + slot * i + slot * 0.1 + bar * j
            body.append(f'<rect x="{x:.1f}" y="{TOP + plot_h - h:.1f}" width="{bar:.1f}" '
                        f'height="{h:.1f}" fill="{colour}"/>')
    body.extend(_x_labels(labels, [LEFT + slot * (i + 0.5) for i in range(len(labels))]))
    for j, s in enumerate(series):
        x = LEFT + 8 + j * 150
        body.append(f'<rect x="{x}" y="{HEIGHT - 12}" width="10" height="10" '
                    f'fill="{COLOURS[j % len(COLOURS)]}"/>'
                    f'<text x="{x + 14}" y="{HEIGHT - 3}" class="tick">{escape(s.name)}</text>')
    return _frame(title, desc, body)


def interval_chart(title: str, desc: str, names: Sequence[str], means: Sequence[float],
                   lows: Sequence[float], highs: Sequence[float]) -> Markup:
    """One row per name: a point at the mean and a bar over its interval, on 0..1."""
    row = 26
    height = TOP + row * max(1, len(names)) + 30
    left, width = 90, WIDTH - 90 - RIGHT
    body = [f'<line x1="{left}" y1="{TOP}" x2="{left}" y2="{height - 26}" class="axis"/>']
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        x = left + width * frac
        body.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{height - 26}" '
                    f'class="grid"/><text x="{x:.1f}" y="{height - 10}" text-anchor="middle" '
                    f'class="tick">{frac:.2f}</text>')
    for i, name in enumerate(names):
        y = TOP + row * i + row / 2
        lo, hi, mean = (left + width * min(max(v, 0.0), 1.0) for v in (lows[i], highs[i],
                                                                       means[i]))
        body.append(f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end" '
                    f'class="tick">{escape(name)}</text>'
                    f'<line x1="{lo:.1f}" y1="{y:.1f}" x2="{hi:.1f}" y2="{y:.1f}" '
                    f'stroke="{COLOURS[0]}" stroke-width="6" stroke-opacity="0.35"/>'
                    f'<circle cx="{mean:.1f}" cy="{y:.1f}" r="5" fill="{COLOURS[0]}"/>')
    svg = _frame(title, desc, body)
    return Markup(str(svg).replace(f'viewBox="0 0 {WIDTH} {HEIGHT}"',  # noqa: S704
                                   f'viewBox="0 0 {WIDTH} {height}"', 1))
