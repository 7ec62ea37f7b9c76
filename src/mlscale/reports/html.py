"""The frame every mlscale page shares: one stylesheet, the page shell, number formatting, writing.

Pages are self-contained: no scripts, no fonts or styles fetched from elsewhere, so they open
offline, print, and can be attached to a ticket. Callers escape every string from data or users.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Iterable
from html import escape
from pathlib import Path
from typing import Any

BASE_CSS = """
:root { --ink: #1f2933; --muted: #616e7c; --line: #d9e2ec; --bar: #3a6ea5; --other: #9aa5b1;
  --good: #2f7d4a; --bad: #b3412e; --highlight: #fff4d6; }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px 32px; font: 14px/1.45 system-ui, -apple-system, "Segoe UI",
  Roboto, Helvetica, Arial, sans-serif; color: var(--ink); background: #f5f7fa; }
header h1 { margin: 0 0 4px; font-size: 24px; overflow-wrap: anywhere; }
header p { margin: 0 0 16px; color: var(--muted); }
h2 { font-size: 17px; }
table { border-collapse: collapse; }
th, td { padding: 3px 10px 3px 0; text-align: left; vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.summary { display: flex; gap: 12px; margin-bottom: 16px; flex-wrap: wrap; }
.summary div { background: #fff; border: 1px solid var(--line); border-radius: 6px;
  padding: 8px 16px; min-width: 120px; }
.summary b { display: block; font-size: 20px; }
.summary span { color: var(--muted); }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(480px, 1fr)); gap: 16px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 12px 16px;
  break-inside: avoid; }
.card h2 { margin: 0 0 8px; overflow-wrap: anywhere; }
.wide { grid-column: 1 / -1; overflow-x: auto; }
.badge { display: inline-block; margin-left: 8px; padding: 0 6px; border-radius: 4px;
  background: #e4e7eb; color: var(--muted); font-size: 12px; font-weight: 500;
  vertical-align: middle; }
.badge.good { background: #dff3e6; color: var(--good); }
.badge.bad { background: #fbe3de; color: var(--bad); }
.note { margin: 2px 0 0; color: var(--muted); font-size: 12px; }
.kv th { color: var(--muted); font-weight: 500; padding-right: 12px; white-space: nowrap; }
.kv td { overflow-wrap: anywhere; }
.grid th { border-bottom: 1px solid var(--line); color: var(--muted); font-weight: 600; }
.grid td, .grid th { padding: 3px 14px 3px 0; }
.grid tr.diff td, .grid tr.diff th { background: var(--highlight); }
.grid td.best { font-weight: 700; color: var(--good); }
.legend { list-style: none; margin: 6px 0 0; padding: 0; display: flex; flex-wrap: wrap;
  gap: 4px 14px; font-size: 12px; color: var(--muted); }
.legend i { display: inline-block; width: 14px; height: 3px; margin-right: 5px;
  vertical-align: middle; }
details summary { cursor: pointer; color: var(--muted); }
svg { display: block; max-width: 100%; height: auto; }
svg text { font: 11px system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
  fill: var(--muted); }
svg .bar { fill: var(--bar); }
svg .other { fill: var(--other); }
svg .axis { stroke: var(--line); }
svg .gridline { stroke: #eef2f6; }
svg .ref { stroke: var(--other); stroke-dasharray: 4 3; fill: none; }
svg text.label { fill: var(--ink); }
@media print {
  body { background: #fff; padding: 0; }
  .cards { grid-template-columns: 1fr 1fr; }
  .card, .summary div { border-color: #bbb; }
}
"""


def page(title: str, body: str, *, subtitle: str = "", css: str = "") -> str:
    """A complete HTML document: ``title`` (escaped here) over ``body`` (already HTML).

    >>> html = page("a <b>", "<p>hi</p>")
    >>> html.startswith("<!DOCTYPE html>"), "<title>a &lt;b&gt;</title>" in html
    (True, True)
    """
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{BASE_CSS}{css}</style></head><body>"
        f"<header><h1>{escape(title)}</h1>"
        + (f"<p>{escape(subtitle)}</p>" if subtitle else "")
        + f"</header>{body}</body></html>\n"
    )


def write_page(path: str | os.PathLike[str], html: str) -> Path:
    """Write ``html`` to ``path`` atomically (a temporary file beside it, then a rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "xb") as f:
            f.write(html.encode())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def number(value: float) -> str:
    """A number for people: integers with separators, others to 4 significant digits.

    >>> number(1234567.0), number(0.123456), number(12345.678), number(0.0001234)
    ('1,234,567', '0.1235', '12,345.7', '0.0001234')
    """
    if value != value or math.isinf(value):
        return str(value)
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 1e6 or abs(value) < 1e-3:
        return f"{value:.4g}"
    return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.1f}"


def text(value: Any) -> str:
    """Any recorded value as short text: numbers formatted, lists joined, None as empty.

    >>> text(0.5), text(None), text([1, "a"]), text(True)
    ('0.5', '', '1, a', 'true')
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return number(value)
    if isinstance(value, list | tuple):
        return ", ".join(text(v) for v in value)
    return str(value)


def kv_table(rows: Iterable[tuple[str, Any]]) -> str:
    """Label/value rows as a two-column table; both escaped."""
    body = "".join(f"<tr><th>{escape(k)}</th><td>{escape(text(v))}</td></tr>" for k, v in rows)
    return f'<table class="kv">{body}</table>'


def summary(items: Iterable[tuple[str, str]]) -> str:
    """Big figures in a row: ``(value, label)`` pairs, escaped."""
    cells = "".join(f"<div><b>{escape(v)}</b><span>{escape(k)}</span></div>" for v, k in items)
    return f'<section class="summary">{cells}</section>'


def card(title: str, content: str, *, badge: str = "", wide: bool = False) -> str:
    """A titled box on the page grid; ``content`` is HTML, ``title`` and ``badge`` are escaped."""
    extra = f'<span class="badge">{escape(badge)}</span>' if badge else ""
    cls = "card wide" if wide else "card"
    return f'<section class="{cls}"><h2>{escape(title)}{extra}</h2>{content}</section>'


def note(message: str) -> str:
    return f'<p class="note">{escape(message)}</p>'
