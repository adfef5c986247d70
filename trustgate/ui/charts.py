"""Charts as SVG drawn on the server: no script, no library, printable.

Owns: a stacked bar chart of counts per day and a horizontal bar chart of
top values. Every text in the SVG is escaped here; the templates insert the
result as markup.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

from trustgate.report._common import visible_controls

# Colours the stylesheet also uses for the verdict badges (see static/style.css).
COLOURS = {
    "allow": "#2e7d32",
    "warn": "#f9a825",
    "deny": "#c62828",
    "error": "#6a1b9a",
    "ci": "#1565c0",
    "presync": "#00838f",
    "admission": "#5d4037",
}
_FALLBACK = ("#455a64", "#8d6e63", "#7cb342", "#3949ab")


def _escape(text: str) -> str:
    """A text for the SVG: control and bidi characters shown as escapes (a namespace or rule name
    comes from a manifest), then HTML-escaped."""
    return html.escape(visible_controls(text, keep=""))


def _colour(series: str, n: int) -> str:
    return COLOURS.get(series, _FALLBACK[n % len(_FALLBACK)])


def stacked_by_day(
    days: Sequence[str], series: Mapping[str, Mapping[str, int]], *, title: str, width: int = 720
) -> str:
    """Bars per day, stacked by series (`series[name][day] = count`), with a legend."""
    height, top, bottom, left = 220, 24, 40, 40
    plot_h = height - top - bottom
    totals = [sum(counts.get(day, 0) for counts in series.values()) for day in days]
    peak = max(totals, default=0) or 1
    slot = (width - left - 10) / max(len(days), 1)
    bar = max(min(slot * 0.8, 40), 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" class="chart"><title>{_escape(title)}</title>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 10}" y2="{top + plot_h}" stroke="#999"/>',
        f'<text x="{left - 4}" y="{top + 4}" text-anchor="end" font-size="10">{peak}</text>',
        f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end" font-size="10">0</text>',
    ]
    for i, day in enumerate(days):
        x = left + i * slot + (slot - bar) / 2
        y = float(top + plot_h)
        for n, (name, counts) in enumerate(series.items()):
            count = counts.get(day, 0)
            if not count:
                continue
            h = plot_h * count / peak
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{_colour(name, n)}"><title>{_escape(day)} {_escape(name)}: {count}</title></rect>'
            )
        if len(days) <= 16 or i % max(len(days) // 8, 1) == 0:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{top + plot_h + 14}" text-anchor="middle" '
                f'font-size="10">{_escape(day[5:])}</text>'
            )
    x = float(left)
    for n, name in enumerate(series):
        parts.append(
            f'<rect x="{x:.1f}" y="{height - 14}" width="10" height="10" fill="{_colour(name, n)}"/>'
            f'<text x="{x + 14:.1f}" y="{height - 5}" font-size="11">{_escape(name)}</text>'
        )
        x += 24 + 7 * len(name)
    if not days:
        parts.append(f'<text x="{width / 2}" y="{top + plot_h / 2}" text-anchor="middle">no decisions</text>')
    parts.append("</svg>")
    return "".join(parts)


def top_bars(
    items: Sequence[tuple[str, int]], *, title: str, colour: str = "#c62828", width: int = 480
) -> str:
    """Horizontal bars of (label, count), largest first as given."""
    row, label_w = 22, 220
    height = max(len(items), 1) * row + 8
    peak = max((c for _, c in items), default=0) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" class="chart"><title>{_escape(title)}</title>'
    ]
    for i, (name, count) in enumerate(items):
        y = 4 + i * row
        w = (width - label_w - 50) * count / peak
        shown = name if len(name) <= 34 else name[:33] + "…"
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end" font-size="11">{_escape(shown)}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="14" fill="{_escape(colour)}">'
            f"<title>{_escape(name)}: {count}</title></rect>"
            f'<text x="{label_w + w + 4:.1f}" y="{y + 14}" font-size="11">{count}</text>'
        )
    if not items:
        parts.append('<text x="8" y="18" font-size="12">none</text>')
    parts.append("</svg>")
    return "".join(parts)
