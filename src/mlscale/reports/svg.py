"""Plots drawn on the server as inline SVG: line and scatter charts, histograms, heatmaps.

Each function returns one ``<svg>`` element (plus, for charts with several series, an HTML legend
after it). Hovering a point, bar or cell shows its figures through SVG ``<title>`` tooltips, which
browsers show without any script. Every label is escaped here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from mlscale.reports.html import number

#: Distinguishable colours for series, in order (Tableau 10).
PALETTE = (
    "#3a6ea5",
    "#e07b39",
    "#4c9a5b",
    "#c44e52",
    "#8172b2",
    "#937860",
    "#da8bc3",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
_CHAR_WIDTH = 6.5  # of an 11px label, to keep tick labels apart


@dataclass(frozen=True)
class Series:
    """One named set of points: drawn as a line, as markers, or both."""

    name: str
    xs: Sequence[float]
    ys: Sequence[float]
    color: str = PALETTE[0]
    line: bool = True
    markers: bool = False
    opacity: float = 1.0
    tips: Sequence[str] | None = None  # one tooltip per marker
    in_legend: bool = True


@dataclass(frozen=True)
class Band:
    """A shaded range between ``lo`` and ``hi`` along ``xs`` (a spread around a line)."""

    xs: Sequence[float]
    lo: Sequence[float]
    hi: Sequence[float]
    color: str = PALETTE[0]


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering ``lo..hi``, about ``count`` of them.

    >>> nice_ticks(0, 1)
    [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    >>> nice_ticks(0.13, 0.71, 4)
    [0.2, 0.4, 0.6]
    >>> nice_ticks(3, 3)
    [3]
    """
    if not hi > lo:
        return [lo]
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    # The round step whose tick count comes closest to ``count``.
    step = min(
        (m * magnitude for m in (1, 2, 2.5, 5, 10)), key=lambda s: abs((hi - lo) / s - count)
    )
    first = math.ceil(lo / step - 1e-9)
    last = math.floor(hi / step + 1e-9)
    return [round(i * step, 12) for i in range(first, last + 1)]


class Frame:
    """A plot area: maps data coordinates to SVG units and draws the axes, grid and titles."""

    def __init__(
        self,
        x_range: tuple[float, float],
        y_range: tuple[float, float],
        *,
        x_label: str = "",
        y_label: str = "",
        width: int = 460,
        height: int = 300,
    ) -> None:
        self.x_range, self.y_range = _widen(x_range), _widen(y_range)
        self.x_label, self.y_label = x_label, y_label
        self.width, self.height = width, height
        self.left, self.right, self.top, self.bottom = 58, 14, 10, 42

    def x(self, value: float) -> float:
        lo, hi = self.x_range
        span = self.width - self.left - self.right
        return self.left + (min(max(value, lo), hi) - lo) / (hi - lo) * span

    def y(self, value: float) -> float:
        lo, hi = self.y_range
        span = self.height - self.top - self.bottom
        return self.top + (1 - (min(max(value, lo), hi) - lo) / (hi - lo)) * span

    def axes(self) -> str:
        """Grid lines at round values, tick labels, and the axis titles."""
        parts = []
        bottom, left = self.height - self.bottom, self.left
        right = self.width - self.right
        for value in nice_ticks(*self.y_range):
            y = self.y(value)
            parts.append(
                f'<line class="gridline" x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}"/>'
            )
            parts.append(
                f'<text x="{left - 5}" y="{y + 4:.1f}" text-anchor="end">'
                f"{escape(number(value))}</text>"
            )
        last_end = -math.inf
        for value in nice_ticks(*self.x_range, count=6):
            x = self.x(value)
            label = number(value)
            half = len(label) * _CHAR_WIDTH / 2
            if x - half < last_end + 6:
                continue  # would overlap the previous label
            last_end = x + half
            parts.append(
                f'<line class="gridline" x1="{x:.1f}" x2="{x:.1f}" y1="{self.top}" y2="{bottom}"/>'
                f'<text x="{x:.1f}" y="{bottom + 15}" text-anchor="middle">{escape(label)}</text>'
            )
        parts.append(
            f'<line class="axis" x1="{left}" x2="{right}" y1="{bottom + 0.5}" y2="{bottom + 0.5}"/>'
            f'<line class="axis" x1="{left - 0.5}" x2="{left - 0.5}" y1="{self.top}" '
            f'y2="{bottom}"/>'
        )
        middle_x = (left + right) / 2
        middle_y = (self.top + bottom) / 2
        if self.x_label:
            parts.append(
                f'<text class="label" x="{middle_x:.1f}" y="{self.height - 6}" '
                f'text-anchor="middle">{escape(self.x_label)}</text>'
            )
        if self.y_label:
            parts.append(
                f'<text class="label" x="12" y="{middle_y:.1f}" text-anchor="middle" '
                f'transform="rotate(-90 12 {middle_y:.1f})">{escape(self.y_label)}</text>'
            )
        return "".join(parts)

    def svg(self, body: str, *, label: str) -> str:
        return (
            f'<svg viewBox="0 0 {self.width} {self.height}" width="{self.width}" '
            f'height="{self.height}" role="img" aria-label="{escape(label)}">'
            f"{self.axes()}{body}</svg>"
        )


def chart(
    series: Sequence[Series],
    *,
    label: str,
    x_label: str = "",
    y_label: str = "",
    x_range: tuple[float, float] | None = None,
    y_range: tuple[float, float] | None = None,
    diagonal: bool = False,
    hlines: Sequence[tuple[float, str]] = (),
    bands: Sequence[Band] = (),
) -> str:
    """Lines and/or markers on shared axes (ranges fitted to the data unless given).

    ``diagonal`` draws y = x (a perfect ROC's chance line, a perfect calibration);
    ``hlines`` draws dashed reference lines ``(y, tooltip)``.

    >>> svg = chart([Series("loss", [1, 2, 3], [0.9, 0.5, 0.4])], label="curve")
    >>> svg.count("<polyline"), 'aria-label="curve"' in svg
    (1, True)
    """
    xs = [float(v) for s in series for v in s.xs] + [float(v) for b in bands for v in b.xs]
    ys = [float(v) for s in series for v in s.ys]
    ys += [float(v) for b in bands for v in (*b.lo, *b.hi)] + [v for v, _ in hlines]
    frame = Frame(
        x_range or _extent(xs),
        y_range or _extent(ys, pad=0.05),
        x_label=x_label,
        y_label=y_label,
    )
    parts = []
    if diagonal:
        lo = max(frame.x_range[0], frame.y_range[0])
        hi = min(frame.x_range[1], frame.y_range[1])
        parts.append(
            f'<line class="ref" x1="{frame.x(lo):.1f}" y1="{frame.y(lo):.1f}" '
            f'x2="{frame.x(hi):.1f}" y2="{frame.y(hi):.1f}"/>'
        )
    for value, tip in hlines:
        y = frame.y(value)
        parts.append(
            f'<line class="ref" x1="{frame.left}" x2="{frame.width - frame.right}" '
            f'y1="{y:.1f}" y2="{y:.1f}"><title>{escape(tip)}</title></line>'
        )
    for band in bands:
        upper = [(frame.x(x), frame.y(v)) for x, v in zip(band.xs, band.hi, strict=True)]
        lower = [(frame.x(x), frame.y(v)) for x, v in zip(band.xs, band.lo, strict=True)]
        points = " ".join(f"{x:.1f},{y:.1f}" for x, y in [*upper, *reversed(lower)])
        parts.append(f'<polygon points="{points}" fill="{band.color}" fill-opacity="0.15"/>')
    for s in series:
        parts.append(_draw(frame, s))
    return frame.svg("".join(parts), label=label) + legend(series)


def legend(series: Sequence[Series]) -> str:
    """An HTML key of the series' colours; nothing for a single series."""
    shown = [s for s in series if s.in_legend]
    if len(shown) < 2:
        return ""
    items = "".join(f'<li><i style="background:{s.color}"></i>{escape(s.name)}</li>' for s in shown)
    return f'<ul class="legend">{items}</ul>'


def histogram(
    edges: Sequence[float], counts: Sequence[int], *, label: str, x_label: str = ""
) -> str:
    """Bars of ``counts`` between consecutive ``edges`` (equal widths assumed), rows on y.

    >>> histogram([0, 1, 2], [3, 5], label="h").count('class="bar"')
    2
    """
    frame = Frame((edges[0], edges[-1]), (0, max(max(counts), 1)), x_label=x_label, y_label="rows")
    total = sum(counts) or 1
    bars = []
    for a, b, count in zip(edges, edges[1:], counts, strict=False):
        left, right, top = frame.x(a), frame.x(b), frame.y(count)
        tip = f"{number(a)} to {number(b)}: {count:,} rows ({count / total:.1%})"
        bars.append(
            f'<rect class="bar" x="{left + 0.5:.1f}" y="{top:.1f}" '
            f'width="{max(right - left - 1, 1):.1f}" height="{frame.y(0) - top:.1f}">'
            f"<title>{escape(tip)}</title></rect>"
        )
    return frame.svg("".join(bars), label=label)


def heatmap(
    matrix: Sequence[Sequence[int]],
    labels: Sequence[str],
    *,
    label: str,
    x_label: str = "predicted",
    y_label: str = "actual",
) -> str:
    """A count matrix as shaded cells, each row shaded by its own share (so rare rows show).

    >>> svg = heatmap([[5, 1], [0, 4]], ["no", "yes"], label="confusion")
    >>> svg.count("<rect"), "83.3%" in svg
    (4, True)
    """
    k = len(labels)
    longest = min(max((len(t) for t in labels), default=1), 18) * _CHAR_WIDTH
    cell = max(min(64, int(420 / max(k, 1))), 8)
    left, top = longest + 36, 8
    # Column labels are turned 45 degrees: they need about 0.7 of their length below the cells.
    width, height = int(left + cell * k + 8), int(top + cell * k + longest * 0.71 + 40)
    parts = []
    for i, row in enumerate(matrix):
        total = sum(row)
        for j, count in enumerate(row):
            share = count / total if total else 0.0
            x, y = left + j * cell, top + i * cell
            tip = f"actual {labels[i]}, predicted {labels[j]}: {count:,} ({share:.1%} of actual)"
            parts.append(
                f'<rect x="{x}" y="{y}" width="{cell - 1}" height="{cell - 1}" '
                f'fill="{_shade(share)}"><title>{escape(tip)}</title></rect>'
            )
            if cell >= 40:
                ink = "#fff" if share > 0.55 else "#1f2933"
                parts.append(
                    f'<text x="{x + cell / 2:.1f}" y="{y + cell / 2 - 2:.1f}" text-anchor="middle" '
                    f'style="fill:{ink}">{count:,}</text>'
                    f'<text x="{x + cell / 2:.1f}" y="{y + cell / 2 + 11:.1f}" '
                    f'text-anchor="middle" style="fill:{ink}">{share:.1%}</text>'
                )
    for i, name in enumerate(labels):
        short = escape(_shorten(name))
        middle = top + i * cell + cell / 2
        parts.append(
            f'<text class="label" x="{left - 5}" y="{middle + 4:.1f}" text-anchor="end">'
            f"{short}</text>"
        )
        x, y = left + i * cell + cell / 2, top + k * cell + 6
        parts.append(
            f'<text class="label" x="{x:.1f}" y="{y:.1f}" text-anchor="end" '
            f'transform="rotate(-45 {x:.1f} {y:.1f})">{short}</text>'
        )
    middle_x, middle_y = left + k * cell / 2, top + k * cell / 2
    parts.append(
        f'<text class="label" x="{middle_x:.1f}" y="{height - 4}" text-anchor="middle">'
        f"{escape(x_label)}</text>"
        f'<text class="label" x="12" y="{middle_y:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 12 {middle_y:.1f})">{escape(y_label)}</text>'
    )
    return (
        f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(label)}">{"".join(parts)}</svg>'
    )


def _draw(frame: Frame, s: Series) -> str:
    points = [(frame.x(float(x)), frame.y(float(y))) for x, y in zip(s.xs, s.ys, strict=True)]
    out = []
    opacity = f' stroke-opacity="{s.opacity}"' if s.opacity < 1 else ""
    if s.line and len(points) > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        out.append(
            f'<polyline points="{path}" fill="none" stroke="{s.color}" stroke-width="2"'
            f'{opacity} stroke-linejoin="round"><title>{escape(s.name)}</title></polyline>'
        )
    if s.markers or (s.line and len(points) == 1):
        radius = 3.5 if s.line else 2.5
        fill = "" if s.line else ' fill-opacity="0.45"'
        for n, (x, y) in enumerate(points):
            tip = s.tips[n] if s.tips is not None else s.name
            out.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{radius}" fill="{s.color}"{fill}>'
                f"<title>{escape(tip)}</title></circle>"
            )
    return "".join(out)


def _extent(values: list[float], pad: float = 0.0) -> tuple[float, float]:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return (0.0, 1.0)
    lo, hi = min(finite), max(finite)
    margin = (hi - lo) * pad
    return (lo - margin, hi + margin)


def _widen(span: tuple[float, float]) -> tuple[float, float]:
    lo, hi = float(span[0]), float(span[1])
    if hi > lo:
        return (lo, hi)
    half = abs(lo) * 0.05 or 0.5  # a single value: a small window around it
    return (lo - half, hi + half)


def _shade(share: float) -> str:
    """White to the bar blue (#3a6ea5) as ``share`` goes from 0 to 1."""
    r, g, b = (round(255 + (c - 255) * share) for c in (0x3A, 0x6E, 0xA5))
    return f"#{r:02x}{g:02x}{b:02x}"


def _shorten(name: str, limit: int = 18) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"
