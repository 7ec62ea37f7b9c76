"""The dashboard's HTML: every section, the drifted features flagged, empty states, escaping."""

from __future__ import annotations

import re

from mlscale import Workspace
from mlscale.dashboard import Collector, render_model, render_overview

SECTIONS = (
    "Traffic",
    "Latency",
    "Errors",
    "Performance",
    "Drift over time",
    "Drift per column",
    "Drift, last hour of traffic",
    "Data quality, last hour",
    "Alerts",
    "Versions and aliases",
)


def _titles(html: str) -> list[str]:
    return re.findall(r'<section class="card(?: wide)?"><h2>([^<]+)', html)


def test_model_page_sections_figures_and_flagged_drift(traffic_ws: Workspace) -> None:
    html = render_model(Collector(traffic_ws).model("loans", window="6h"))
    titles = _titles(html)
    for section in SECTIONS:
        assert any(t.startswith(section) for t in titles), section
    assert html.startswith("<!DOCTYPE html>") and "<script" not in html
    assert "http" not in html.replace("http-equiv", "")  # nothing fetched: works offline
    # Traffic, latency and performance (the confidence-based estimate: no labels yet) charts,
    # the heatmap, one small multiple per column (12 features and 2 outputs); no error chart
    # (no server counted requests).
    multiples = re.findall(r"<figure><figcaption>(.*?)</figcaption>", html)
    assert len(multiples) == 14
    assert html.count("<svg") == 3 + 1 + 14
    assert 'aria-label="auc over time"' in html and "estimated auc (CBPE)" in html
    assert 'aria-label="drift of each column over time"' in html
    # The drifted features lead the small multiples, flagged, and are flagged in the table.
    for name in ("annual_income", "interest_rate", "purpose", "state"):
        assert f'{name} <span class="badge bad">drift</span>' in html, name
        assert f"<tr class=flag><td>{name}</td>" in html, name
    assert multiples[0].split(" ")[0] in {"annual_income", "interest_rate", "purpose", "state"}
    assert "<tr><td>age</td><td>numeric</td><td>psi</td>" in html  # stable: not highlighted
    # Heatmap cells and drift markers carry their figures as tooltips.
    assert re.search(
        r"<title>interest_rate, [0-9-]+ [0-9:]+ \(\+10m\): psi [0-9.]+, threshold", html
    )
    assert "loans@production</b> none → 1 by" in html  # the alias move
    assert 'href="/dashboard/models/loans?version=1&amp;window=1h"' in html  # other windows
    assert "no labels yet" in html and "no alerts" in html


def test_overview_lists_models_with_drift_and_links(traffic_ws: Workspace) -> None:
    ws = traffic_ws
    ws.rollback("loans", reason="<script>alert('x')</script>")
    html = render_overview(Collector(ws).overview(), refresh=30)
    assert '<meta http-equiv="refresh" content="30">' in html
    assert '<a href="/dashboard/models/loans?window=24h"><b>loans</b></a>' in html
    assert '<span class="badge bad">' in html and "interest_rate" in html
    assert 'aria-label="requests of loans over time"' in html
    assert "<script" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html  # the reason, escaped
    assert "loans@production</b> 1 → none" in html


def test_empty_states_render(quiet_ws: Workspace) -> None:
    collector = Collector(quiet_ws)
    overview = render_overview(collector.overview())
    assert '<span class="badge">no data</span>' in overview
    page = render_model(collector.model("loans"))
    titles = _titles(page)
    assert not any(t.startswith("Drift") for t in titles)
    assert "no predictions of loans are logged in the last 24h" in page
    assert page.count("no requests in this range") == 2  # traffic and latency
    assert "auc at training" in page  # performance without labels: the training figure
    assert "no alerts" in page and "refresh" not in page
