"""Small server-side SVG charts for the dashboard (no JavaScript, no chart library): bars for
money per month, lines for service counts per state. Labels are escaped by the caller's
template; numbers here are computed, never user text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT, PAD = 560, 180, 30
COLOURS = ("#2b6cb0", "#c05621", "#2f855a", "#805ad5", "#b83280", "#718096")


@dataclass(frozen=True)
class Series:
    label: str
    values: Sequence[int]


def _scale(series: Sequence[Series]) -> int:
    top = max((v for s in series for v in s.values), default=0)
    return top if top > 0 else 1


def bar_chart(labels: Sequence[str], series: Sequence[Series], title: str) -> str:
    top = _scale(series)
    groups = max(len(labels), 1)
    slot = (WIDTH - 2 * PAD) / groups
    width = slot * 0.8 / max(len(series), 1)
    parts = [_frame(title)]
    for s_index, one in enumerate(series):
        colour = COLOURS[s_index % len(COLOURS)]
        for index, value in enumerate(one.values):
            height = (HEIGHT - 2 * PAD) * value / top
            x = PAD + index * slot + slot * 0.1 + s_index * width
            y = HEIGHT - PAD - height
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{height:.1f}" '
                f'fill="{colour}"><title>{escape(one.label)} {escape(labels[index])}: '
                f"{value}</title></rect>"
            )
    parts += _axis_labels(labels, slot)
    return _close(parts)


def line_chart(labels: Sequence[str], series: Sequence[Series], title: str) -> str:
    top = _scale(series)
    steps = max(len(labels) - 1, 1)
    parts = [_frame(title)]
    for s_index, one in enumerate(series):
        colour = COLOURS[s_index % len(COLOURS)]
        points = " ".join(
            f"{PAD + i * (WIDTH - 2 * PAD) / steps:.1f},"
            f"{HEIGHT - PAD - (HEIGHT - 2 * PAD) * v / top:.1f}"
            for i, v in enumerate(one.values)
        )
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}">'
            f"<title>{escape(one.label)}</title></polyline>"
        )
    slot = (WIDTH - 2 * PAD) / max(len(labels), 1)
    parts += _axis_labels(labels, slot, centred=False, steps=steps)
    return _close(parts)


def _frame(title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" class="chart"><title>{escape(title)}</title>'
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" '
        'stroke="#999"/>'
    )


def _axis_labels(
    labels: Sequence[str], slot: float, *, centred: bool = True, steps: int = 1
) -> list[str]:
    out = []
    for index, label in enumerate(labels):
        x = PAD + index * slot + slot / 2 if centred else PAD + index * (WIDTH - 2 * PAD) / steps
        out.append(
            f'<text x="{x:.1f}" y="{HEIGHT - 10}" font-size="11" text-anchor="middle">'
            f"{escape(label)}</text>"
        )
    return out


def _close(parts: list[str]) -> str:
    return "".join(parts) + "</svg>"
