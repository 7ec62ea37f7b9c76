"""The dashboard's HTML: pure functions of :mod:`mlscale.dashboard.data`'s dataclasses.

Pages use the shared frame of :mod:`mlscale.reports.html` and draw every figure as inline SVG
(:mod:`mlscale.dashboard.plots`): no script, nothing fetched, so they work offline and print.
Navigation (model, version, window) is plain links with a query string; ``refresh`` adds a
``<meta http-equiv="refresh">``. Every string from data or a user is escaped where it is written.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from html import escape
from urllib.parse import quote, urlencode

from mlscale.dashboard.data import (
    WINDOWS,
    AlertView,
    DriftSeries,
    Latest,
    ModelPanel,
    Overview,
    PerformanceView,
)
from mlscale.dashboard.plots import VERDICT_COLOURS, Line, sparkline, time_chart, time_heatmap
from mlscale.monitor.drift import FeatureDrift
from mlscale.monitor.quality import ColumnQuality
from mlscale.reports.html import card, note, number, page, summary
from mlscale.reports.svg import PALETTE
from mlscale.store.records import AliasEvent, ModelVersion

CSS = """
nav.bar { display: flex; flex-wrap: wrap; gap: 6px 18px; align-items: center; margin: 0 0 16px;
  padding: 8px 12px; background: #fff; border: 1px solid var(--line); border-radius: 6px; }
nav.bar span { color: var(--muted); }
nav.bar a { color: var(--bar); text-decoration: none; padding: 1px 6px; border-radius: 4px; }
nav.bar a.on { background: var(--bar); color: #fff; }
a { color: var(--bar); }
.notice { margin: 0 0 12px; padding: 8px 12px; border-left: 4px solid #d9a21b;
  background: #fff8e6; border-radius: 4px; }
.multiples { display: grid; grid-template-columns: repeat(auto-fill, minmax(250px, 1fr));
  gap: 10px 16px; }
.multiples figure { margin: 0; }
.multiples figcaption { font-weight: 600; font-size: 13px; overflow-wrap: anywhere; }
.badge.warn { background: #fdf1d3; color: #8a6200; }
.grid tr.flag td { background: #fbe3de; }
.grid tr.warn td { background: #fdf1d3; }
ul.events { list-style: none; margin: 0; padding: 0; }
ul.events li { padding: 4px 0; border-bottom: 1px solid #eef2f6; }
ul.events time { color: var(--muted); font-variant-numeric: tabular-nums; margin-right: 8px; }
.grid td { vertical-align: middle; }
svg.spark { display: inline-block; vertical-align: middle; }
.nowrap { white-space: nowrap; }
.key { display: flex; gap: 12px; font-size: 12px; color: var(--muted); margin-top: 4px; }
.key i { display: inline-block; width: 12px; height: 12px; border-radius: 2px;
  vertical-align: middle; margin-right: 4px; }
"""
BASE = "/dashboard"
_VERDICT_BADGE = {"drift": "bad", "warning": "warn", "stable": "good"}


def render_overview(overview: Overview, *, refresh: int | None = None) -> str:
    """The overview: every model with its traffic, errors and drift; alerts; alias moves."""
    o = overview
    nav = _nav([("all models", BASE, True)], _window_links(BASE, o.window, {}))
    total_requests = sum(m.requests for m in o.models)
    drifting = [m.name for m in o.models if m.drifted]
    firing = o.firing
    figures = summary(
        [
            (str(len(o.models)), "models"),
            (number(total_requests), f"requests, last {o.window}"),
            (str(len(drifting)), "models drifting"),
            (str(len(firing)), "alerts firing"),
        ]
    )
    cards = [
        card("Models", _models_table(o), wide=True),
        card(
            "Alerts", _alerts(o.firing, o.alerts), badge=f"{len(firing)} firing" if firing else ""
        ),
        card("Recent alias moves", _moves(o.moves)),
    ]
    if o.unresolved_errors:
        rows = "".join(
            f'<tr><td>{code}</td><td class="num">{number(n)}</td></tr>'
            for code, n in sorted(o.unresolved_errors.items())
        )
        cards.append(
            card(
                "Requests that failed before a model was found",
                f'<table class="grid"><tr><th>status</th><th class="num">requests</th></tr>'
                f"{rows}</table>"
                + note("since the server started: unknown models, bad references, no token"),
            )
        )
    if o.counts_note:
        cards.append(card("Error counts", note(o.counts_note)))
    body = nav + figures + f'<div class="cards">{"".join(cards)}</div>'
    return _page("mlscale dashboard", body, _subtitle(o.since, o.until, o.generated), refresh)


def render_model(panel: ModelPanel, *, refresh: int | None = None) -> str:
    """One model's page: traffic, latency, errors, drift, quality, performance, alerts."""
    p = panel
    here = f"{BASE}/models/{quote(p.name, safe='')}"
    version_links = [
        (
            f"{v.version}" + (f" ({', '.join(sorted(v.aliases))})" if v.aliases else ""),
            _href(here, {"window": p.window, "version": str(v.version)}),
            v.version == p.version.version,
        )
        for v in p.versions
    ]
    nav = _nav(
        [("← all models", _href(BASE, {"window": p.window}), False)],
        _window_links(here, p.window, {"version": str(p.version.version)}),
        ("version", version_links),
    )
    notices = "".join(f'<p class="notice">{escape(n)}</p>' for n in p.notes)
    x_range = (p.since, p.until)
    latest = p.latest
    errors = sum(e.errors for e in p.errors)
    error_requests = sum(e.requests for e in p.errors)
    firing = p.firing
    figures = summary(
        [
            (number(p.total.requests), "requests"),
            (number(p.total.rows), "rows predicted"),
            (_ms(p.total.p95_ms), "p95 latency"),
            (_pct(errors / error_requests) if error_requests else "n/a", "error rate"),
            (
                f"{len(latest.report.drifted)} of {len(latest.report.features)}"
                if latest is not None
                else "n/a",
                "features drifting, last hour",
            ),
            (str(len(firing)), "alerts firing"),
        ]
    )
    cards = [
        card("Traffic", _traffic_chart(p, x_range), badge=f"per {_duration(p.traffic_step)}"),
        card("Latency", _latency_chart(p, x_range), badge="per request"),
        card("Errors", _errors_section(p, x_range), badge=f"{number(errors)} failed"),
        card("Performance", _performance(p.performance, x_range)),
    ]
    if p.drift is not None:
        cards.append(card("Drift over time", _heatmap(p.drift, x_range), wide=True))
        latest_verdicts = (
            {f.feature: f.verdict for f in (*latest.report.features, *latest.report.outputs)}
            if latest is not None
            else {}
        )
        cards.append(
            card("Drift per column", _multiples(p.drift, x_range, latest_verdicts), wide=True)
        )
    if latest is not None:
        cards.append(card(_latest_title(latest), _drift_table(latest), wide=True))
        cards.append(card("Data quality, last hour", _quality_table(latest), wide=True))
    cards += [
        card(
            "Alerts", _alerts(p.firing, p.alerts), badge=f"{len(firing)} firing" if firing else ""
        ),
        card(
            "Versions and aliases", _versions(p.versions) + "<h3>Alias moves</h3>" + _moves(p.moves)
        ),
    ]
    body = nav + notices + figures + f'<div class="cards">{"".join(cards)}</div>'
    subtitle = f"version {p.version.version} · " + _subtitle(p.since, p.until, p.generated)
    return _page(f"{p.name} · dashboard", body, subtitle, refresh)


# --- pieces ------------------------------------------------------------------------------------


def _page(title: str, body: str, subtitle: str, refresh: int | None) -> str:
    html = page(title, body, subtitle=subtitle, css=CSS)
    if refresh:
        html = html.replace(
            '<meta charset="utf-8">',
            f'<meta charset="utf-8"><meta http-equiv="refresh" content="{int(refresh)}">',
            1,
        )
    return html


def _subtitle(since: float, until: float, generated: float) -> str:
    return (
        f"{_when(since)} to {_when(until, short=_when(since)[:10] == _when(until)[:10])} UTC · "
        f"updated {datetime.fromtimestamp(generated, UTC):%H:%M:%S} UTC"
    )


def _href(path: str, query: dict[str, str]) -> str:
    return f"{path}?{urlencode(query)}" if query else path


def _window_links(
    path: str, current: str, extra: dict[str, str]
) -> tuple[str, list[tuple[str, str, bool]]]:
    return ("window", [(w, _href(path, {**extra, "window": w}), w == current) for w in WINDOWS])


def _nav(
    lead: list[tuple[str, str, bool]], *groups: tuple[str, list[tuple[str, str, bool]]]
) -> str:
    def links(items: Iterable[tuple[str, str, bool]]) -> str:
        return "".join(
            f'<a href="{escape(href)}"{" class=on" if on else ""}>{escape(text)}</a>'
            for text, href, on in items
        )

    parts = [f"<div>{links(lead)}</div>"]
    parts += [f"<div><span>{escape(name)}:</span> {links(items)}</div>" for name, items in groups]
    return f'<nav class="bar">{"".join(parts)}</nav>'


def _models_table(o: Overview) -> str:
    if not o.models:
        return note("no models yet: train one (mlscale train DATASET@latest --target COLUMN)")
    head = (
        "<tr><th>model</th><th>aliases</th><th class=num>versions</th><th>latest</th>"
        "<th>traffic</th><th class=num>requests</th><th class=num>rows</th><th class=num>p95</th>"
        "<th class=num>errors</th><th>drift, last hour</th><th class=num>alerts</th></tr>"
    )
    rows = []
    for m in o.models:
        link = _href(f"{BASE}/models/{quote(m.name, safe='')}", {"window": o.window})
        aliases = ", ".join(f"{a} → {v}" for a, v in m.aliases.items()) or "none"
        if m.drifted is None:
            drift = '<span class="badge">no data</span>'
        elif m.drifted:
            shown = ", ".join(m.drifted[:4]) + (" …" if len(m.drifted) > 4 else "")
            drift = (
                f'<span class="badge bad">{len(m.drifted)} of {m.features}</span> {escape(shown)}'
            )
        else:
            drift = '<span class="badge good">stable</span>'
        errors = (
            f"{number(m.errors)} ({_pct(m.errors / m.error_requests)})"
            if m.error_requests
            else "n/a"
        )
        alerts = f'<span class="badge bad">{m.alerts_firing}</span>' if m.alerts_firing else "0"
        rows.append(
            f'<tr><td><a href="{escape(link)}"><b>{escape(m.name)}</b></a></td>'
            f'<td class="nowrap">{escape(aliases)}</td><td class=num>{m.versions}</td>'
            f'<td class="nowrap">{escape(m.latest.ref)} · {escape(m.latest.flavor)}</td>'
            f"<td>{sparkline(m.activity, label=f'requests of {m.name} over time')}</td>"
            f"<td class=num>{number(m.requests)}</td><td class=num>{number(m.rows)}</td>"
            f'<td class="num nowrap">{_ms(m.p95_ms)}</td><td class="num nowrap">{errors}</td>'
            f"<td>{drift}</td><td class=num>{alerts}</td></tr>"
        )
    return f'<table class="grid">{head}{"".join(rows)}</table>'


def _traffic_chart(p: ModelPanel, x_range: tuple[float, float]) -> str:
    if not any(t.requests for t in p.traffic):
        return note("no requests in this range")
    minutes = p.traffic_step / 60
    starts = [t.start for t in p.traffic]
    lines = [
        Line(
            "requests per minute, all versions",
            [t.requests / minutes for t in p.traffic],
            color="#9db7d5",
            bars=True,
            tips=[
                f"{_when(t.start)}: {number(t.requests)} requests, {number(t.rows)} rows"
                for t in p.traffic
            ],
        )
    ]
    if len(p.traffic_by_version) > 1:
        for n, (version, points) in enumerate(sorted(p.traffic_by_version.items())):
            lines.append(
                Line(
                    f"version {version}",
                    [t.requests / minutes if t.requests else math.nan for t in points],
                    color=PALETTE[(n + 1) % len(PALETTE)],
                )
            )
    chart = time_chart(
        starts, lines, step=p.traffic_step, label="requests per minute", x_range=x_range,
        y_label="requests / min",
    )  # fmt: skip
    rows_per_request = p.total.rows / p.total.requests if p.total.requests else 0
    return chart + note(
        f"{number(p.total.requests)} requests, {number(p.total.rows)} rows "
        f"({number(round(rows_per_request, 1))} rows per request)"
    )


def _latency_chart(p: ModelPanel, x_range: tuple[float, float]) -> str:
    if not any(t.requests for t in p.traffic):
        return note("no requests in this range")
    starts = [t.start for t in p.traffic]
    lines = [
        Line("p50", [t.p50_ms for t in p.traffic], color=PALETTE[2]),
        Line("p95", [t.p95_ms for t in p.traffic], color=PALETTE[1]),
        Line("p99", [t.p99_ms for t in p.traffic], color=PALETTE[3]),
    ]
    chart = time_chart(
        starts, lines, step=p.traffic_step, label="latency percentiles", x_range=x_range,
        y_label="ms",
    )  # fmt: skip
    t = p.total
    return chart + note(
        f"over the range: p50 {_ms(t.p50_ms)}, p95 {_ms(t.p95_ms)}, p99 {_ms(t.p99_ms)} "
        "(time in the server, from the prediction log)"
    )


def _errors_section(p: ModelPanel, x_range: tuple[float, float]) -> str:
    parts = []
    if any(e.requests for e in p.errors):
        starts = [e.start for e in p.errors]
        rates = [e.rate * 100 if e.requests else math.nan for e in p.errors]
        parts.append(
            time_chart(
                starts,
                [
                    Line(
                        "error rate",
                        rates,
                        color=PALETTE[3],
                        bars=True,
                        tips=[
                            f"{_when(e.start)}: {number(e.errors)} of {number(e.requests)} "
                            "requests failed"
                            for e in p.errors
                        ],
                    )
                ],
                step=p.traffic_step,
                label="error rate",
                x_range=x_range,
                y_label="% failed",
                y_format=lambda v: f"{number(v)}%",
            )
        )
    if p.error_totals:
        rows = "".join(
            f"<tr{' class=flag' if code >= 500 else ''}><td>{code}</td>"
            f'<td class="num">{number(n)}</td></tr>'
            for code, n in p.error_totals.items()
        )
        parts.append(
            '<table class="grid"><tr><th>status</th><th class="num">requests</th></tr>'
            f"{rows}</table>" + note("by status code since the server started")
        )
    if p.counts_note:
        parts.append(note(p.counts_note))
    return "".join(parts) or note("no requests counted yet")


def _heatmap(d: DriftSeries, x_range: tuple[float, float]) -> str:
    values, tips = [], []
    for c in d.columns:
        row, tip = [], []
        for k, start in enumerate(d.starts):
            score, threshold = d.scores[c][k], d.thresholds[c][k]
            ratio = score / threshold if threshold and math.isfinite(score) else math.nan
            row.append(ratio)
            verdict = d.verdicts[c][k]
            tip.append(
                f"{c}, {_when(start)} (+{_duration(d.step)}): "
                + (
                    f"{d.methods[c]} {score:.3f}, threshold {threshold:.3f}: {verdict}, "
                    f"{number(d.rows[k])} rows"
                    if verdict
                    else "no rows"
                )
            )
        values.append(row)
        tips.append(tip)
    labels = [f"↳ {c}" if c in d.outputs else c for c in d.columns]
    svg = time_heatmap(
        labels, d.starts, values, step=d.step, label="drift of each column over time",
        tips=tips, x_range=x_range,
    )  # fmt: skip
    key = (
        '<div class="key"><span><i style="background:#e8f1ea"></i>below half the threshold</span>'
        '<span><i style="background:#f2c14e"></i>at the threshold</span>'
        '<span><i style="background:#b3412e"></i>twice it or more</span>'
        '<span><i style="background:#f5f7fa;border:1px solid #d9e2ec"></i>no rows</span></div>'
    )
    return (
        svg
        + key
        + note(
            f"each cell: one {_duration(d.step)} period, the column's drift score divided by the "
            "threshold its verdict used; ↳ marks the model's outputs (prediction drift)"
        )
    )


def _multiples(d: DriftSeries, x_range: tuple[float, float], latest: dict[str, str]) -> str:
    """A small chart per column, those drifting in the last hour first, badged with that
    verdict (else the verdict of the newest period with rows)."""

    def last_verdict(c: str) -> str:
        return latest.get(c) or next((v for v in reversed(d.verdicts[c]) if v), "")

    order = {"drift": 0, "warning": 1, "stable": 2, "": 3}
    figures = []
    for c in sorted(d.columns, key=lambda c: (order[last_verdict(c)], d.columns.index(c))):
        verdict = last_verdict(c)
        scores, thresholds = d.scores[c], d.thresholds[c]
        top = max([v for v in (*scores, *thresholds) if math.isfinite(v)], default=1.0)
        chart = time_chart(
            d.starts,
            [
                Line("threshold", thresholds, color="#9aa5b1", dashed=True, in_legend=False),
                Line(
                    d.methods.get(c, "score"),
                    scores,
                    color="#3a6ea5",
                    markers=True,
                    point_colors=[VERDICT_COLOURS[v] for v in d.verdicts[c]],
                    tips=[
                        f"{_when(t)}: {d.methods[c]} {s:.3f} (threshold {th:.3f}) {v}"
                        if v
                        else f"{_when(t)}: no rows"
                        for t, s, th, v in zip(
                            d.starts, scores, thresholds, d.verdicts[c], strict=True
                        )
                    ],
                    in_legend=False,
                ),
            ],
            step=d.step,
            label=f"drift of {c}",
            x_range=x_range,
            y_range=(0.0, top * 1.15),
            width=300,
            height=150,
        )
        badge = f'<span class="badge {_VERDICT_BADGE.get(verdict, "")}">{escape(verdict)}</span>'
        name = f"↳ {c}" if c in d.outputs else c
        figures.append(
            f"<figure><figcaption>{escape(name)} {badge if verdict else ''}</figcaption>"
            f"{chart}</figure>"
        )
    return f'<div class="multiples">{"".join(figures)}</div>' + note(
        "score per period (marker colour: its verdict); dashed: the threshold, raised for "
        "small periods to the score noise alone would reach"
    )


def _latest_title(latest: Latest) -> str:
    return (
        f"Drift, last hour of traffic ({_when(latest.start)} to "
        f"{_when(latest.end, short=True)}, {number(latest.report.rows)} rows)"
    )


def _drift_table(latest: Latest) -> str:
    r = latest.report
    head = (
        "<tr><th>column</th><th>kind</th><th>statistic</th><th class=num>score</th>"
        "<th class=num>threshold</th><th class=num>PSI</th><th class=num>JS</th>"
        "<th class=num>missing ref → now</th><th>verdict</th></tr>"
    )

    def rows(items: Sequence[FeatureDrift], prefix: str = "") -> str:
        out = []
        for f in items:
            cls = {"drift": " class=flag", "warning": " class=warn"}.get(f.verdict, "")
            out.append(
                f"<tr{cls}><td>{escape(prefix + f.feature)}</td><td>{escape(f.kind)}</td>"
                f"<td>{escape(f.method)}</td><td class=num>{f.score:.3f}</td>"
                f"<td class=num>{f.threshold:.3f}</td><td class=num>{f.psi:.3f}</td>"
                f"<td class=num>{f.js:.3f}</td>"
                f"<td class=num>{_pct(f.reference_missing)} → {_pct(f.current_missing)}</td>"
                f'<td><span class="badge {_VERDICT_BADGE[f.verdict]}">{f.verdict}</span></td></tr>'
            )
        return "".join(out)

    verdict = (
        f"{len(r.drifted)} of {len(r.features)} features drifted"
        + (f": {', '.join(r.drifted)}" if r.drifted else "")
        + (" — the dataset counts as drifted" if r.dataset_drift else "")
        + (" — the predictions drifted" if r.prediction_drift else "")
    )
    reference = (
        "compared with the training reference"
        if r.reference == "training"
        else "compared with the training profile (this version has no full reference)"
    )
    return (
        f'<p><b>{escape(verdict)}</b></p><table class="grid">{head}{rows(r.features)}'
        f"{rows(r.outputs, '↳ ')}</table>" + note(reference)
    )


def _quality_table(latest: Latest) -> str:
    head = (
        "<tr><th>column</th><th class=num>missing</th><th class=num>in training</th>"
        "<th class=num>out of range</th><th class=num>unseen</th><th class=num>violations</th>"
        "<th>top unseen values</th></tr>"
    )

    def row(q: ColumnQuality, prefix: str = "") -> str:
        worse = q.missing_rate > q.reference_missing_rate + 0.05
        flag = q.violations or (q.unseen_rate or 0) > 0.01 or (q.out_of_range_rate or 0) > 0.01
        cls = " class=flag" if q.violations else " class=warn" if flag or worse else ""
        unseen = ", ".join(f"{k} ({number(v)})" for k, v in list(q.top_unseen.items())[:3])
        return (
            f"<tr{cls}><td>{escape(prefix + q.column)}</td>"
            f"<td class=num>{_pct(q.missing_rate)}</td>"
            f"<td class=num>{_pct(q.reference_missing_rate)}</td>"
            f"<td class=num>{_pct(q.out_of_range_rate)}</td>"
            f"<td class=num>{_pct(q.unseen_rate)}</td>"
            f"<td class=num>{number(q.violations)}</td><td>{escape(unseen)}</td></tr>"
        )

    body = "".join(row(q) for q in latest.quality)
    body += "".join(row(q, "↳ ") for q in latest.output_quality)
    return f'<table class="grid">{head}{body}</table>' + note(
        "out of range: beyond the training minimum or maximum; unseen: a category training did "
        "not have; violations: values that could not be read as the column's type"
    )


def _performance(view: PerformanceView, x_range: tuple[float, float]) -> str:
    parts = []
    finite = [v for v in (*view.realised, *view.estimated) if math.isfinite(v)]
    if finite:
        lines = [
            Line(
                f"realised {view.metric}",
                view.realised,
                color=PALETTE[0],
                markers=True,
                tips=[
                    f"{_when(t)}: {view.metric} {v:.4f} on {_pct(c)} of the rows labelled"
                    if math.isfinite(v)
                    else f"{_when(t)}: no labels"
                    for t, v, c in zip(view.starts, view.realised, view.coverage, strict=True)
                ],
            ),
            Line(f"estimated {view.metric} (CBPE)", view.estimated, color=PALETTE[4], dashed=True),
        ]
        if view.training is not None:
            lines.append(
                Line(
                    f"at training ({number(round(view.training, 4))})",
                    [view.training] * len(view.starts),
                    color="#9aa5b1",
                    dashed=True,
                )
            )
        values = [v for line in lines for v in line.ys if math.isfinite(v)]
        lo, hi = min(values), max(values)
        pad = max((hi - lo) * 0.15, 0.01)
        parts.append(
            time_chart(
                view.starts,
                [line for line in lines if any(math.isfinite(v) for v in line.ys)],
                step=view.step,
                label=f"{view.metric} over time",
                x_range=x_range,
                y_label=view.metric,
                y_range=(lo - pad, hi + pad),
            )
        )
        facts = []
        if view.labelled_rows:
            facts.append(f"{number(view.labelled_rows)} labelled rows")
        if view.calibration:
            facts.append(f"the estimate assumes calibrated probabilities: {view.calibration}")
        if facts:
            parts.append(note("; ".join(facts)))
    elif view.training is not None:
        parts.append(summary([(number(round(view.training, 4)), f"{view.metric} at training")]))
    if view.note:
        parts.append(note(view.note))
    return "".join(parts) or note("no performance figures")


def _alerts(firing: Sequence[AlertView], events: Sequence[AlertView]) -> str:
    """The alerts firing now, then the recent events (fired, resolved)."""
    if not firing and not events:
        return note(
            "no alerts: rules in monitor.yaml, evaluated by mlscale monitor alerts, record "
            "their firing and resolving here"
        )

    def message(a: AlertView) -> str:
        return escape(a.message.removeprefix(f"{a.model}: "))  # the model is named already

    def now_firing(a: AlertView) -> str:
        severity = f" ({escape(a.severity)})" if a.severity else ""
        return (
            f"<li><span class='badge bad'>firing</span> <b>{escape(a.model)}</b> "
            f"{escape(a.rule)}{severity}: {message(a)} <time>since {_when(a.at)}</time></li>"
        )

    def event(a: AlertView) -> str:
        badge = "bad" if a.state == "firing" else "good"
        severity = f" ({escape(a.severity)})" if a.severity else ""
        return (
            f"<li><time>{_when(a.at)}</time><span class='badge {badge}'>{escape(a.state)}</span> "
            f"<b>{escape(a.model)}</b> {escape(a.rule)}{severity}: {message(a)}</li>"
        )

    parts = []
    if firing:
        parts.append(f'<ul class="events">{"".join(now_firing(a) for a in firing)}</ul>')
    else:
        parts.append(note("nothing firing now"))
    if events:
        parts.append("<h3>Recent events</h3>")
        parts.append(f'<ul class="events">{"".join(event(a) for a in events)}</ul>')
    return "".join(parts)


def _moves(moves: Sequence[AliasEvent]) -> str:
    if not moves:
        return note("no alias moves yet: mlscale models promote NAME VERSION --alias production")
    items = []
    for e in moves:
        before = "none" if e.from_version is None else str(e.from_version)
        after = "none" if e.to_version is None else str(e.to_version)
        who = f" by {e.actor}" if e.actor else ""
        why = f": {e.reason}" if e.reason else ""
        items.append(
            f"<li><time>{_when(e.at.timestamp())}</time><b>{escape(e.model)}@{escape(e.alias)}"
            f"</b> {escape(before)} → {escape(after)}{escape(who + why)}</li>"
        )
    return f'<ul class="events">{"".join(items)}</ul>'


def _versions(versions: Sequence[ModelVersion]) -> str:
    rows = []
    for v in versions:
        metrics = ", ".join(f"{k} {number(round(x, 4))}" for k, x in sorted(v.metrics.items()))
        aliases = "".join(f'<span class="badge good">{escape(a)}</span>' for a in v.aliases)
        rows.append(
            f"<tr><td><b>{v.version}</b>{aliases}</td><td>{escape(v.flavor)}</td>"
            f"<td>{_when(v.created_at.timestamp())}</td><td>{escape(v.dataset or '')}</td>"
            f"<td>{escape(metrics)}</td></tr>"
        )
    head = "<tr><th>version</th><th>flavor</th><th>created</th><th>data</th><th>metrics</th></tr>"
    return f'<table class="grid">{head}{"".join(rows)}</table>'


# --- formatting --------------------------------------------------------------------------------


def _when(t: float, *, short: bool = False) -> str:
    """``2026-11-21 14:05`` (UTC), or only ``14:05`` when ``short``."""
    moment = datetime.fromtimestamp(t, UTC)
    return moment.strftime("%H:%M" if short else "%Y-%m-%d %H:%M")


def _pct(value: float | None) -> str:
    """A share as a percentage; empty for None.

    >>> _pct(0.1234), _pct(0.0), _pct(None), _pct(0.00004)
    ('12.3%', '0%', '', '0.004%')
    """
    if value is None or not math.isfinite(value):
        return ""
    if value == 0:
        return "0%"
    return f"{value * 100:.3g}%" if value < 0.01 else f"{value:.1%}"


def _ms(value: float) -> str:
    """A latency in milliseconds, ``n/a`` when there were no requests."""
    if not math.isfinite(value):
        return "n/a"
    return f"{value:.3g} ms" if value < 100 else f"{number(round(value))} ms"


def _duration(seconds: float) -> str:
    """``5m``, ``1h``, ``1d``.

    >>> _duration(300), _duration(3_600), _duration(90), _duration(86_400)
    ('5m', '1h', '90s', '1d')
    """
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def render_error(message: str, *, status: int) -> str:
    """A page that says what went wrong and links back to the overview."""
    body = _nav([("← all models", BASE, False)]) + f'<p class="notice">{escape(message)}</p>'
    return _page(f"dashboard: error {status}", body, "", None)
