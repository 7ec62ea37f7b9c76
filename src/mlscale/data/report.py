"""A profile as one self-contained HTML page: a summary, then a card per column with a plot.

No scripts, no fonts or styles from elsewhere: the page opens offline, prints, and can be attached
to a ticket. Plots are inline SVG: a histogram for numeric and timestamp columns (bar area is the
share of rows, so the decile bins of a profile show the shape of the distribution), horizontal bars
of the most common values for categorical ones. Every string from the data is escaped.
"""

from __future__ import annotations

import itertools
import math
import os
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from mlscale.data.profile import Profile
from mlscale.reports.html import number, page, write_page

TOP_CATEGORIES = 15
_WIDTH, _HEIGHT = 520, 170  # histogram drawing area, in SVG units
_PAD_LEFT, _PAD_BOTTOM = 10, 24
_CHAR_WIDTH = 6.5  # of an 11px label, to keep axis labels apart
_DISCRETE_VALUES = 30  # numeric columns with at most this many values get a bar per value

# The shared look (body, cards, badges, SVG text) is reports.html.BASE_CSS; these rules are the
# profile page's own.
_CSS = """
.overview { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 8px 16px;
  margin-bottom: 20px; }
.overview th { border-bottom: 1px solid var(--line); color: var(--muted); font-weight: 600; }
.overview a { color: var(--bar); text-decoration: none; }
.stats { font-size: 13px; margin-bottom: 8px; }
.stats th { color: var(--muted); font-weight: 500; padding-right: 6px; }
.stats td { padding-right: 18px; }
@media print { .overview { border-color: #bbb; } }
"""


def render_html(profile: Profile, *, title: str, subtitle: str = "") -> str:
    """The profile as a self-contained HTML page (no scripts, nothing fetched).

    >>> import pyarrow as pa
    >>> from mlscale.data.profile import profile_table
    >>> from mlscale.data.schema import Schema, Column
    >>> p = profile_table(pa.table({"x": [1.0, 2.0]}), Schema([Column("x", "float64")]))
    >>> page = render_html(p, title="x <1>")
    >>> page.count("<svg"), "x &lt;1&gt;" in page
    (1, True)
    """
    columns = profile.columns
    cells = profile.num_rows * len(columns)
    missing = sum(c["missing"] for c in columns.values())
    summary = "".join(
        f"<div><b>{value}</b><span>{label}</span></div>"
        for value, label in (
            (f"{profile.num_rows:,}", "rows"),
            (f"{len(columns):,}", "columns"),
            (_percent(missing, cells), "missing cells"),
        )
    )
    overview = "".join(
        f'<tr><td><a href="#col-{i}">{escape(name)}</a></td><td>{escape(stats["type"])}</td>'
        f'<td class="num">{_percent(stats["missing"], stats["count"])}</td>'
        f'<td class="num">{_distinct(stats)}</td></tr>'
        for i, (name, stats) in enumerate(columns.items())
    )
    cards = "".join(_card(i, name, stats) for i, (name, stats) in enumerate(columns.items()))
    return page(
        title,
        f'<section class="summary">{summary}</section>'
        '<section class="overview"><table><thead><tr><th>column</th><th>type</th>'
        '<th class="num">missing</th><th class="num">distinct</th></tr></thead>'
        f'<tbody>{overview}</tbody></table></section><main class="cards">{cards}</main>',
        subtitle=subtitle,
        css=_CSS,
    )


def write_html(profile: Profile, path: str | os.PathLike[str], **kwargs: Any) -> Path:
    """Write :func:`render_html`'s page to ``path`` atomically (a temporary file, then a rename)."""
    return write_page(path, render_html(profile, **kwargs))


def _card(i: int, name: str, stats: dict[str, Any]) -> str:
    if stats["kind"] == "categorical":
        rows = [
            ("count", f"{stats['count']:,}"),
            ("missing", _with_share(stats["missing"], stats["count"])),
            ("distinct", _distinct(stats)),
            ("other", _with_share(stats["other"], stats["count"])),
        ]
        plot = _category_bars(stats)
    else:
        time = stats["kind"] == "timestamp"
        rows = [
            ("count", f"{stats['count']:,}"),
            ("missing", _with_share(stats["missing"], stats["count"])),
            ("distinct", _distinct(stats)),
        ]
        if "mean" in stats:
            rows += [
                ("mean", _value(stats["mean"], time)),
                ("std", _duration(stats["std"]) if time else number(stats["std"])),
                ("min", _value(stats["min"], time)),
                *((q, _value(v, time)) for q, v in stats["quantiles"].items()),
                ("max", _value(stats["max"], time)),
            ]
        plot = _histogram(stats, time)
    table = _stats_table(rows, 2 if stats["kind"] == "timestamp" else 3)
    note = " (approximate, from a sketch)" if stats.get("sampled") else ""
    return (
        f'<section class="card" id="col-{i}"><h2>{escape(name)}'
        f'<span class="badge">{escape(stats["type"])}</span></h2>{table}{plot}'
        + (f'<div class="badge">quantiles and histogram{note}</div>' if note else "")
        + "</section>"
    )


def _stats_table(rows: list[tuple[str, str]], per_line: int) -> str:
    # Several label/value pairs per line keep the card short.
    cells = [f"<th>{escape(k)}</th><td>{escape(v)}</td>" for k, v in rows]
    lines = ["".join(cells[j : j + per_line]) for j in range(0, len(cells), per_line)]
    return '<table class="stats">' + "".join(f"<tr>{line}</tr>" for line in lines) + "</table>"


def _histogram(stats: dict[str, Any], time: bool) -> str:
    width, height = _WIDTH + 2 * _PAD_LEFT, _HEIGHT + _PAD_BOTTOM + 6
    svg = f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img"'
    hist = stats.get("histogram")
    if not hist or "min" not in stats:
        return _no_values()
    values = stats.get("sketch", {}).get("values", [])
    if 0 < len(values) <= _DISCRETE_VALUES:
        return f'{svg} aria-label="value counts">{_value_bars(stats, time)}</svg>'
    lo, hi = float(stats["min"]), float(stats["max"])
    cuts = [float(c) for c in hist["cuts"]]
    edges, counts = [lo, *cuts, hi], list(hist["counts"])
    if hi <= lo:  # a single value: one bar across
        edges, counts = [lo - 0.5, lo + 0.5], [sum(counts)]
    # Long tails would squeeze the body of the distribution into a corner: show p01..p99.
    view_lo, view_hi = edges[0], edges[-1]
    q = stats.get("quantiles", {})
    body = q.get("p99", hi) - q.get("p01", lo)
    if body > 0 and q["p01"] - lo > 0.25 * body:
        view_lo = q["p01"] - 0.02 * body
    if body > 0 and hi - q["p99"] > 0.25 * body:
        view_hi = q["p99"] + 0.02 * body
    view = view_hi - view_lo
    # A bin narrower than 1.5% of the view (one value of a discrete column) is drawn that wide;
    # bar height is rows per unit of x, so bar area is the share of rows.
    widths = [max(b - a, view * 0.015) for a, b in itertools.pairwise(edges)]
    density = [c / w for c, w in zip(counts, widths, strict=True)]
    top, total = max(density) or 1.0, sum(counts) or 1

    def x(value: float) -> float:
        return _PAD_LEFT + (min(max(value, view_lo), view_hi) - view_lo) / view * _WIDTH

    bars = []
    for (a, b), w, c, d in zip(itertools.pairwise(edges), widths, counts, density, strict=True):
        start = min(a, edges[-1] - w)
        left, right = x(start), x(start + w)
        if right - left < 0.5:
            continue
        bar_h = d / top * _HEIGHT
        tip = f"{_value(a, time)} to {_value(b, time)}: {c:,} rows ({c / total:.1%})"
        bars.append(
            f'<rect class="bar" x="{left:.1f}" y="{_HEIGHT - bar_h + 4:.1f}" '
            f'width="{max(right - left - 1, 1):.1f}" height="{bar_h:.1f}">'
            f"<title>{escape(tip)}</title></rect>"
        )
    marks = [view_lo, *(c for c in cuts[1::2] if view_lo < c < view_hi), view_hi]
    labels: list[tuple[float, str]] = []  # (right end, svg text) of each label kept
    for j, value in enumerate(marks):
        text = _value(value, time, short=True)
        half = len(text) * _CHAR_WIDTH / 2
        pos, is_last = x(value), j == len(marks) - 1
        anchor = "start" if j == 0 else "end" if is_last else "middle"
        start = pos if j == 0 else pos - 2 * half if is_last else pos - half
        if labels and start < labels[-1][0] + 10:
            if not is_last:
                continue
            if len(labels) > 1:
                labels.pop()
        labels.append(
            (
                start + 2 * half,
                f'<text x="{pos:.1f}" y="{_HEIGHT + 20}" text-anchor="{anchor}">{escape(text)}</text>',
            )
        )
    axis = (
        f'<line class="axis" x1="{_PAD_LEFT}" x2="{_PAD_LEFT + _WIDTH}" '
        f'y1="{_HEIGHT + 4.5}" y2="{_HEIGHT + 4.5}"/>'
    )
    ticks = "".join(text for _, text in labels)
    plot = f'{svg} aria-label="histogram">{"".join(bars)}{axis}{ticks}</svg>'
    if (view_lo, view_hi) != (edges[0], edges[-1]):
        plot += (
            f'<p class="note">Axis shows p01 to p99; the outer bins run on to the min '
            f"({escape(_value(lo, time))}) and max ({escape(_value(hi, time))}).</p>"
        )
    return plot


def _value_bars(stats: dict[str, Any], time: bool) -> str:
    """A bar per value, for numeric columns with few distinct values (a 0/1 flag, a term)."""
    values, counts = stats["sketch"]["values"], stats["sketch"]["counts"]
    step = _WIDTH / len(values)
    top, total = max(counts), sum(counts)
    widest = max(len(_value(v, time, short=True)) for v in values) * _CHAR_WIDTH + 10
    every = math.ceil(widest / step)  # label every value when they fit, else every n-th
    parts = []
    for j, (value, count) in enumerate(zip(values, counts, strict=True)):
        bar_h = count / top * _HEIGHT
        left = _PAD_LEFT + j * step
        tip = f"{_value(value, time)}: {count:,} rows ({count / total:.1%})"
        parts.append(
            f'<rect class="bar" x="{left + step * 0.1:.1f}" y="{_HEIGHT - bar_h + 4:.1f}" '
            f'width="{step * 0.8:.1f}" height="{bar_h:.1f}"><title>{escape(tip)}</title></rect>'
        )
        if j % every == 0:
            parts.append(
                f'<text x="{left + step / 2:.1f}" y="{_HEIGHT + 20}" text-anchor="middle">'
                f"{escape(_value(value, time, short=True))}</text>"
            )
    axis = (
        f'<line class="axis" x1="{_PAD_LEFT}" x2="{_PAD_LEFT + _WIDTH}" '
        f'y1="{_HEIGHT + 4.5}" y2="{_HEIGHT + 4.5}"/>'
    )
    return "".join(parts) + axis


def _category_bars(stats: dict[str, Any]) -> str:
    items = list(stats["categories"].items())
    shown = items[:TOP_CATEGORIES]
    rest = sum(c for _, c in items[TOP_CATEGORIES:]) + stats.get("other", 0)
    rows: list[tuple[str, int, bool]] = [(k, c, False) for k, c in shown]
    if rest:
        rows.append(("all others", rest, True))
    total = stats["count"] - stats["missing"]
    label_w, bar_w, row_h = 170, 270, 20
    width, height = label_w + bar_w + 90, max(row_h * len(rows), row_h) + 4
    svg = f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img"'
    if not rows:
        return _no_values()
    top = max(c for _, c, _ in rows) or 1
    parts = []
    for j, (key, count, is_other) in enumerate(rows):
        y = j * row_h + 2
        length = max(count / top * bar_w, 1.0)
        text = key if len(key) <= 26 else key[:25] + "…"
        share = count / total if total else 0.0
        name = f"values beyond the top {TOP_CATEGORIES}" if is_other else key
        style = ' font-style="italic"' if is_other else ""
        parts.append(
            f"<g><title>{escape(name)}: {count:,} ({share:.1%})</title>"
            f'<text class="label" x="{label_w - 6}" y="{y + 13}" text-anchor="end"{style}>'
            f"{escape(text)}</text>"
            f'<rect class="{"other" if is_other else "bar"}" x="{label_w}" y="{y + 2}" '
            f'width="{length:.1f}" height="{row_h - 5}"/>'
            f'<text x="{label_w + length + 5:.1f}" y="{y + 13}">{count:,} ({share:.1%})</text></g>'
        )
    return f'{svg} aria-label="most common values">{"".join(parts)}</svg>'


def _no_values() -> str:
    return (
        '<svg viewBox="0 0 200 24" width="200" height="24" role="img" aria-label="no values">'
        '<text x="0" y="16">no values</text></svg>'
    )


def _distinct(stats: dict[str, Any]) -> str:
    if "distinct" not in stats:
        return ""
    return f"{'' if stats.get('distinct_exact', True) else '≈ '}{stats['distinct']:,}"


def _percent(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "0.0%"


def _with_share(part: int, whole: int) -> str:
    return f"{part:,} ({_percent(part, whole)})"


def _value(value: float, time: bool, *, short: bool = False) -> str:
    if not time:
        return number(value)
    try:
        moment = datetime.fromtimestamp(value / 1e6, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return number(value)
    return moment.strftime("%Y-%m-%d" if short else "%Y-%m-%d %H:%M")


def _duration(micros: float) -> str:
    days = micros / 86_400e6
    return f"{days:,.1f} days" if days >= 1 else f"{micros / 3_600e6:,.2f} hours"
