"""A bar chart as inline SVG: the count per day, drawn by the server (no script, no build)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

__all__ = ["bar_chart"]

_BAR = 56
_GAP = 12
_HEIGHT = 160
_LABEL = 18


def bar_chart(bars: Sequence[tuple[str, int]]) -> str:
    """``(label, count)`` bars, each with its count above and its label below."""
    top = max((count for _, count in bars), default=0) or 1
    width = len(bars) * (_BAR + _GAP) + _GAP
    parts = [
        f'<svg class="chart" role="img" aria-label="follow-ups due per day" '
        f'width="{width}" height="{_HEIGHT + 2 * _LABEL}" '
        f'viewBox="0 0 {width} {_HEIGHT + 2 * _LABEL}">'
    ]
    for index, (label, count) in enumerate(bars):
        x = _GAP + index * (_BAR + _GAP)
        height = round(_HEIGHT * count / top)
        y = _LABEL + _HEIGHT - height
        parts.append(
            f'<g class="bar" data-count="{count}"><title>{escape(label)}: {count}</title>'
            f'<rect x="{x}" y="{y}" width="{_BAR}" height="{height}"/>'
            f'<text x="{x + _BAR / 2}" y="{y - 4}" text-anchor="middle">{count}</text>'
            f'<text x="{x + _BAR / 2}" y="{_LABEL + _HEIGHT + 14}" text-anchor="middle">'
            f"{escape(label)}</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)
