"""Time-series plots for the dashboard, drawn on the server as inline SVG (no script).

They build on :mod:`mlscale.reports.svg` (its :class:`~mlscale.reports.svg.Frame` maps data to
SVG units, its palette and legend) and add what a monitoring page needs: a time axis labelled in
UTC clock times, lines that break where a period has no data, bars per period, per-point
colours (a drift verdict), a threshold drawn as a dashed line, and a columns x time heatmap.
Every label and tooltip is escaped here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from itertools import pairwise

from mlscale.reports.html import number
from mlscale.reports.svg import PALETTE, Frame, Series, legend, nice_ticks

VERDICT_COLOURS = {"stable": "#4c9a5b", "warning": "#d9a21b", "drift": "#c44e52", "": "#9aa5b1"}
_TICK_STEPS = (60, 300, 600, 900, 1_800, 3_600, 7_200, 10_800, 21_600, 43_200, 86_400, 172_800)


@dataclass(frozen=True)
class Line:
    """One series over the chart's times: NaN leaves a gap; ``bars`` draws a bar per period."""

    name: str
    ys: Sequence[float]
    color: str = PALETTE[0]
    dashed: bool = False
    markers: bool = False
    bars: bool = False
    point_colors: Sequence[str] | None = None  # one per point, for markers
    tips: Sequence[str] | None = None  # one per point
    in_legend: bool = True


def clock(t: float, span: float) -> str:
    """A tick label for epoch ``t``: ``14:05``, or ``21 Nov 14:00`` on spans over two days.

    >>> clock(1_800_000_300, 3_600), clock(1_800_000_000, 7 * 86_400)
    ('08:05', '15 Jan 08:00')
    """
    moment = datetime.fromtimestamp(t, UTC)
    return moment.strftime("%d %b %H:%M" if span > 2 * 86_400 else "%H:%M")


def time_ticks(lo: float, hi: float, count: int = 6) -> list[float]:
    """Round UTC times from ``lo`` to ``hi``, about ``count`` of them.

    >>> [clock(t, 3_600) for t in time_ticks(1_800_000_000, 1_800_003_600)]
    ['08:00', '08:10', '08:20', '08:30', '08:40', '08:50', '09:00']
    """
    span = max(hi - lo, 1.0)
    step = next((s for s in _TICK_STEPS if span / s <= count), _TICK_STEPS[-1])
    first = math.ceil(lo / step) * step
    return [float(t) for t in range(int(first), int(hi) + 1, step)]


class TimeFrame(Frame):
    """A :class:`Frame` whose x axis is epoch seconds, labelled with UTC clock times."""

    def __init__(
        self,
        x_range: tuple[float, float],
        y_range: tuple[float, float],
        *,
        y_label: str = "",
        y_format: Callable[[float], str] = number,
        width: int = 560,
        height: int = 210,
    ) -> None:
        super().__init__(x_range, y_range, y_label=y_label, width=width, height=height)
        self.y_format = y_format
        self.left, self.bottom, self.top = 50, 22, 8

    def axes(self) -> str:
        parts = []
        bottom, left = self.height - self.bottom, self.left
        right = self.width - self.right
        for value in nice_ticks(*self.y_range, count=4):
            y = self.y(value)
            parts.append(
                f'<line class="gridline" x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}"/>'
                f'<text x="{left - 5}" y="{y + 4:.1f}" text-anchor="end">'
                f"{escape(self.y_format(value))}</text>"
            )
        lo, hi = self.x_range
        last_end = -math.inf
        for t in time_ticks(lo, hi, count=max(2, (right - left) // 70)):
            x = self.x(t)
            label = clock(t, hi - lo)
            half = len(label) * 3.3
            if x - half < last_end + 6 or x + half > self.width:
                continue
            last_end = x + half
            parts.append(
                f'<line class="gridline" x1="{x:.1f}" x2="{x:.1f}" y1="{self.top}" y2="{bottom}"/>'
                f'<text x="{x:.1f}" y="{bottom + 15}" text-anchor="middle">{escape(label)}</text>'
            )
        parts.append(
            f'<line class="axis" x1="{left}" x2="{right}" y1="{bottom + 0.5}" y2="{bottom + 0.5}"/>'
        )
        if self.y_label:
            middle_y = (self.top + bottom) / 2
            parts.append(
                f'<text class="label" x="12" y="{middle_y:.1f}" text-anchor="middle" '
                f'transform="rotate(-90 12 {middle_y:.1f})">{escape(self.y_label)}</text>'
            )
        return "".join(parts)


def time_chart(
    starts: Sequence[float],
    lines: Sequence[Line],
    *,
    step: float,
    label: str,
    x_range: tuple[float, float],
    y_label: str = "",
    y_range: tuple[float, float] | None = None,
    y_format: Callable[[float], str] = number,
    width: int = 560,
    height: int = 210,
) -> str:
    """``lines`` over periods starting at ``starts`` (``step`` seconds long), one ``<svg>``.

    Points sit at the middle of their period; the y range starts at 0 unless given.

    >>> svg = time_chart([0, 60, 120], [Line("rows", [3, math.nan, 5], markers=True)],
    ...                  step=60, label="traffic", x_range=(0, 180))
    >>> svg.count("<polyline"), svg.count("<circle")  # the gap splits the line
    (0, 2)
    """
    values = [y for line in lines for y in line.ys if math.isfinite(y)]
    top = max(values, default=1.0)
    frame = TimeFrame(
        x_range, y_range or (0.0, top * 1.08 if top > 0 else 1.0), y_label=y_label,
        y_format=y_format, width=width, height=height,
    )  # fmt: skip
    parts = [_line(frame, starts, step, line) for line in lines if line.bars]
    parts += [_line(frame, starts, step, line) for line in lines if not line.bars]
    shown = [
        Series(line.name, [], [], color=line.color, in_legend=line.in_legend) for line in lines
    ]
    return frame.svg("".join(parts), label=label) + legend(shown)


def _line(frame: Frame, starts: Sequence[float], step: float, line: Line) -> str:
    out = []
    if line.bars:
        for n, (t, y) in enumerate(zip(starts, line.ys, strict=True)):
            if not math.isfinite(y) or y <= 0:
                continue
            x0, x1 = frame.x(t), frame.x(t + step)
            top = frame.y(y)
            tip = line.tips[n] if line.tips is not None else f"{line.name}: {number(y)}"
            out.append(
                f'<rect x="{x0 + 0.5:.1f}" y="{top:.1f}" width="{max(x1 - x0 - 1, 1):.1f}" '
                f'height="{max(frame.y(0) - top, 0.5):.1f}" fill="{line.color}" '
                f'fill-opacity="0.75"><title>{escape(tip)}</title></rect>'
            )
        return "".join(out)
    runs: list[list[tuple[float, float]]] = [[]]
    for t, y in zip(starts, line.ys, strict=True):
        if math.isfinite(y):
            runs[-1].append((frame.x(t + step / 2), frame.y(y)))
        elif runs[-1]:
            runs.append([])
    dash = ' stroke-dasharray="5 4"' if line.dashed else ""
    width = 1.5 if line.dashed else 2
    for run in runs:
        if len(run) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
            out.append(
                f'<polyline points="{path}" fill="none" stroke="{line.color}" '
                f'stroke-width="{width}"{dash} stroke-linejoin="round">'
                f"<title>{escape(line.name)}</title></polyline>"
            )
    for n, (t, y) in enumerate(zip(starts, line.ys, strict=True)):
        alone = _alone(line.ys, n)
        if not math.isfinite(y) or not (line.markers or alone):
            continue
        color = line.point_colors[n] if line.point_colors is not None else line.color
        tip = line.tips[n] if line.tips is not None else f"{line.name}: {number(y)}"
        out.append(
            f'<circle cx="{frame.x(t + step / 2):.1f}" cy="{frame.y(y):.1f}" r="3" '
            f'fill="{color}"><title>{escape(tip)}</title></circle>'
        )
    return "".join(out)


def _alone(ys: Sequence[float], n: int) -> bool:
    """A finite point with no finite neighbour draws no line: it needs a marker to show."""
    before = n > 0 and math.isfinite(ys[n - 1])
    after = n + 1 < len(ys) and math.isfinite(ys[n + 1])
    return not before and not after


def ratio_colour(ratio: float) -> str:
    """A heatmap cell's colour for score / threshold: pale below half the threshold, amber at
    it, deep red at twice it and beyond; light grey for no data.

    >>> ratio_colour(0.0), ratio_colour(1.0), ratio_colour(5.0), ratio_colour(math.nan)
    ('#e8f1ea', '#f2c14e', '#b3412e', '#f5f7fa')
    """
    if not math.isfinite(ratio):
        return "#f5f7fa"
    anchors = ((0.0, (0xE8, 0xF1, 0xEA)), (0.5, (0xE8, 0xF1, 0xEA)), (1.0, (0xF2, 0xC1, 0x4E)),
               (2.0, (0xB3, 0x41, 0x2E)))  # fmt: skip
    ratio = min(max(ratio, 0.0), 2.0)
    for (a, ca), (b, cb) in pairwise(anchors):
        if ratio <= b:
            share = (ratio - a) / (b - a)
            r, g, bl = (round(x + (y - x) * share) for x, y in zip(ca, cb, strict=True))
            return f"#{r:02x}{g:02x}{bl:02x}"
    return "#b3412e"


def time_heatmap(
    rows: Sequence[str],
    starts: Sequence[float],
    values: Sequence[Sequence[float]],
    *,
    step: float,
    label: str,
    tips: Sequence[Sequence[str]],
    x_range: tuple[float, float],
    width: int = 1100,
) -> str:
    """One row of cells per name in ``rows``, one column per period: cells coloured by
    ``values`` (score / threshold, see :func:`ratio_colour`), each with its tooltip.

    >>> svg = time_heatmap(["age"], [0, 60], [[0.2, 1.5]], step=60, label="drift",
    ...                    tips=[["a", "b"]], x_range=(0, 120))
    >>> svg.count("<rect"), "<title>b</title>" in svg
    (2, True)
    """
    longest = min(max((len(r) for r in rows), default=4), 24)
    left = int(longest * 6.8) + 14
    cell_h, top = 20, 4
    frame = TimeFrame(x_range, (0.0, 1.0), width=width, height=top + cell_h * len(rows) + 24)
    frame.left, frame.right, frame.top, frame.bottom = left, 8, top, 24
    parts = []
    for i, name in enumerate(rows):
        y = top + i * cell_h
        parts.append(
            f'<text class="label" x="{left - 6}" y="{y + cell_h / 2 + 4:.1f}" text-anchor="end">'
            f"{escape(name if len(name) <= 24 else name[:23] + '…')}</text>"
        )
        for j, t in enumerate(starts):
            x0, x1 = frame.x(t), frame.x(t + step)
            parts.append(
                f'<rect x="{x0:.1f}" y="{y}" width="{max(x1 - x0 - 1, 1):.1f}" '
                f'height="{cell_h - 2}" rx="2" fill="{ratio_colour(values[i][j])}">'
                f"<title>{escape(tips[i][j])}</title></rect>"
            )
    bottom = frame.height - frame.bottom
    lo, hi = x_range
    last_end = -math.inf
    for t in time_ticks(lo, hi, count=max(2, (width - left) // 90)):
        x = frame.x(t)
        text = clock(t, hi - lo)
        if x - len(text) * 3.3 < last_end + 6:
            continue
        last_end = x + len(text) * 3.3
        parts.append(f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle">{text}</text>')
    return (
        f'<svg viewBox="0 0 {width} {frame.height}" width="{width}" height="{frame.height}" '
        f'role="img" aria-label="{escape(label)}">{"".join(parts)}</svg>'
    )


def sparkline(values: Sequence[float], *, label: str, width: int = 140, height: int = 26) -> str:
    """A tiny bar chart of ``values`` (a table cell's worth of trend), no axes.

    >>> sparkline([0, 3, 1], label="requests").count("<rect")
    2
    """
    top = max(values, default=0) or 1
    bar = width / max(len(values), 1)
    parts = [
        f'<rect x="{i * bar:.1f}" y="{height - v / top * (height - 2):.1f}" '
        f'width="{max(bar - 0.6, 0.6):.1f}" height="{v / top * (height - 2):.1f}" '
        f'fill="{PALETTE[0]}" fill-opacity="0.7"/>'
        for i, v in enumerate(values)
        if v > 0
    ]
    parts.append(
        f'<line x1="0" x2="{width}" y1="{height - 0.5}" y2="{height - 0.5}" stroke="#d9e2ec"/>'
    )
    return (
        f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(label)}">{"".join(parts)}</svg>'
    )
