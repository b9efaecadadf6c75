"""The demo's HTML report: the story's figures, with charts drawn as inline SVG.

No scripts and no external assets: the file opens anywhere, offline.  Each chart has a
title, a description and the same figures as a table, for screen readers.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Report", "Series", "line_chart"]

_COLOURS = ["#1f5fa8", "#b5452b", "#2f7d32", "#7b3fa0", "#8a6d00"]


@dataclass
class Series:
    name: str
    points: list[float]


@dataclass
class Report:
    title: str
    sections: list[tuple[str, str]] = field(default_factory=list)

    def add(self, heading: str, body_html: str) -> None:
        self.sections.append((heading, body_html))

    def add_text(self, heading: str, lines: Sequence[str]) -> None:
        items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
        self.add(heading, f"<ul>{items}</ul>")

    def add_table(self, heading: str, header: Sequence[str],
                  rows: Sequence[Sequence[object]], caption: str = "") -> None:
        self.add(heading, table(header, rows, caption))

    def render(self) -> str:
        body = "".join(
            f'<section aria-labelledby="s{i}"><h2 id="s{i}">{html.escape(h)}</h2>{b}</section>'
            for i, (h, b) in enumerate(self.sections)
        )
        return (
            "<!doctype html><html lang=en><head><meta charset=utf-8>"
            f"<title>{html.escape(self.title)}</title>"
            '<meta name=viewport content="width=device-width, initial-scale=1">'
            f"<style>{_CSS}</style></head><body><main>"
            f"<h1>{html.escape(self.title)}</h1>{body}</main></body></html>"
        )

    def write(self, path: Path) -> None:
        path.write_text(self.render(), encoding="utf-8")


def table(header: Sequence[str], rows: Sequence[Sequence[object]], caption: str = "") -> str:
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    head = "".join(f'<th scope="col">{html.escape(str(h))}</th>' for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
        for row in rows
    )
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def line_chart(title: str, desc: str, x_labels: Sequence[str], series: Sequence[Series],
               *, y_max: float | None = None, y_label: str = "") -> str:
    """An accessible SVG line chart plus its data table."""
    w, h, left, bottom, top, right = 640, 270, 48, 36, 30, 120
    top_value = y_max or max((max(s.points, default=0) for s in series), default=1) or 1
    n = max(len(x_labels) - 1, 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        x = left + (w - left - right) * i / n
        y = top + (h - top - bottom) * (1 - v / top_value)
        return x, y

    parts = [f'<svg viewBox="0 0 {w} {h}" role="img" aria-labelledby="t d" '
             f'width="100%" style="max-width:{w}px">',
             f'<title id="t">{html.escape(title)}</title><desc id="d">{html.escape(desc)}</desc>']
    for k in range(5):
        v = top_value * k / 4
        _, y = xy(0, v)
        parts.append(f'<line x1="{left}" x2="{w - right}" y1="{y:.1f}" y2="{y:.1f}" '
                     'stroke="#ddd"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" '
                     f'font-size="11">{v:g}</text>')
    for i, label in enumerate(x_labels):
        x, _ = xy(i, 0)
        parts.append(f'<text x="{x:.1f}" y="{h - 14}" text-anchor="middle" '
                     f'font-size="11">{html.escape(label)}</text>')
    for j, s in enumerate(series):
        colour = _COLOURS[j % len(_COLOURS)]
        pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(i, v) for i, v in
                                                       enumerate(s.points)))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2.5" '
                     f'points="{pts}"/>')
        ly = top + 16 * j + 8
        parts.append(f'<rect x="{w - right + 10}" y="{ly - 8}" width="12" height="4" '
                     f'fill="{colour}"/><text x="{w - right + 28}" y="{ly - 3}" '
                     f'font-size="12">{html.escape(s.name)}</text>')
    if y_label:
        parts.append(f'<text x="{left - 40}" y="14" font-size="11">{html.escape(y_label)}</text>')
    parts.append("</svg>")
    rows: list[list[object]] = [[label, *(s.points[i] if i < len(s.points) else "" for s in
                                          series)] for i, label in enumerate(x_labels)]
    data = table(["", *(s.name for s in series)], rows, caption=f"{title} (data)")
    return "".join(parts) + f"<details><summary>Figures</summary>{data}</details>"


def key_values(pairs: Mapping[str, object]) -> str:
    items = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>"
                    for k, v in pairs.items())
    return f"<dl>{items}</dl>"


_CSS = """
body{font:15px/1.5 system-ui,sans-serif;color:#1b1b1b;background:#fafafa;margin:0}
main{max-width:980px;margin:0 auto;padding:24px}
h1{font-size:1.6rem}h2{font-size:1.2rem;border-bottom:1px solid #ccc;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #ccc;padding:4px 8px;
text-align:left}caption{text-align:left;font-weight:600;padding:4px 0}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px}dt{font-weight:600}
section{background:#fff;border:1px solid #e0e0e0;border-radius:6px;padding:4px 16px 12px;
margin:16px 0}
"""
