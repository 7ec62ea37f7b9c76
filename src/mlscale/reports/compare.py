"""Several runs side by side: a metrics table (best value marked), the params that differ
highlighted, and their learning curves on one chart."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import TYPE_CHECKING, Any

from mlscale.reports.html import card, note, number, page, text
from mlscale.reports.runs import (
    better,
    describe,
    loss_curves,
    ordered_metrics,
    param_rows,
    seconds,
    short_id,
)
from mlscale.reports.svg import PALETTE, Series, chart, legend

if TYPE_CHECKING:
    from mlscale.store.records import Run


def runs_page(runs: Sequence[Run], curves_by_run: Mapping[str, dict[str, Any] | None]) -> str:
    """Compare ``runs`` (in the order given); ``curves_by_run`` maps run id to its curves JSON.

    >>> from datetime import datetime
    >>> from mlscale.store.records import Run
    >>> def run(i, auc, leaves):
    ...     return Run(f"run{i}aaaa", "train", "finished", {"hp": {"leaves": leaves}},
    ...                {"auc": auc}, "loans@1", {}, datetime(2025, 1, 1), None, 1.0)
    >>> html = runs_page([run(1, 0.8, 31), run(2, 0.9, 63)],
    ...                  {"run1aaaa": {"valid_loss": [0.6, 0.5]}, "run2aaaa": None})
    >>> '<tr class="diff"><th>hp.leaves</th>' in html, '<td class="num best">0.9</td>' in html
    (True, True)
    """
    heads = "".join(
        f'<th class="num" style="color:{_color(i)}">{escape(short_id(r.id))}</th>'
        for i, r in enumerate(runs)
    )
    head = f"<thead><tr><th></th>{heads}</tr></thead>"
    overview = [
        _row("run", [describe(r) for r in runs]),
        _row("status", [r.status for r in runs]),
        _row("started", [f"{r.started_at:%Y-%m-%d %H:%M}" for r in runs]),
        _row("wall time", [seconds(r.duration_s) for r in runs]),
        _row("model version", [r.env.get("model_version", "") for r in runs]),
    ]
    cards = [
        card(
            "Metrics",
            f'<table class="grid">{head}<tbody>{"".join(overview)}'
            f"{_metric_rows(runs)}</tbody></table>"
            + note("the best value of each metric is in bold"),
            wide=True,
        ),
        _params_card(runs, head),
    ]
    curves = _curves_chart(runs, curves_by_run)
    cards.append(card("Learning curves", curves or note("none of these runs recorded curves")))
    return page(
        f"Comparing {len(runs)} runs",
        f'<main class="cards">{"".join(cards)}</main>',
        subtitle=", ".join(f"{short_id(r.id)} ({describe(r)})" for r in runs),
    )


def _metric_rows(runs: Sequence[Run]) -> str:
    names = ordered_metrics({m for r in runs for m in r.metrics})
    rows = []
    for name in names:
        values = [r.metrics.get(name) for r in runs]
        present = [v for v in values if v is not None]
        best = None
        if present and not name.endswith("_std") and len(present) > 1:
            best = present[0]
            for v in present[1:]:
                best = v if better(name, v, best) else best
        cells = "".join(
            f'<td class="num{" best" if v is not None and v == best else ""}">'
            f"{'' if v is None else escape(number(v))}</td>"
            for v in values
        )
        rows.append(f"<tr><th>{escape(name)}</th>{cells}</tr>")
    return "".join(rows)


def _params_card(runs: Sequence[Run], head: str) -> str:
    rows = param_rows(runs)
    differ = [r for r in rows if r[2]]
    same = [r for r in rows if not r[2]]
    table = (
        f'<table class="grid">{head}<tbody>'
        + "".join(_row(k, [text(v) for v in vs], diff=True) for k, vs, _ in differ)
        + "</tbody></table>"
        if differ
        else note("every parameter is the same in these runs")
    )
    if same:
        table += (
            f"<details><summary>{len(same)} parameters the same in every run</summary>"
            f'<table class="grid"><tbody>'
            + "".join(_row(k, [text(vs[0])]) for k, vs, _ in same)
            + "</tbody></table></details>"
        )
    badge = f"{len(differ)} differ" if differ else ""
    return card("Parameters", table, badge=badge, wide=True)


def _curves_chart(runs: Sequence[Run], curves_by_run: Mapping[str, Any]) -> str:
    series, keys = [], []
    for i, run in enumerate(runs):
        lines = loss_curves(curves_by_run.get(run.id))
        for name, ys in lines:
            series.append(
                Series(
                    short_id(run.id) + (f" {name}" if len(lines) > 1 else ""),
                    range(1, len(ys) + 1),
                    ys,
                    color=_color(i),
                    opacity=1.0 if len(lines) == 1 else 0.6,
                    in_legend=False,
                )
            )
        if lines:
            keys.append(Series(short_id(run.id), [], [], color=_color(i)))
    if not series:
        return ""
    plot = chart(series, label="learning curves", x_label="iteration", y_label="validation loss")
    folds = note("k-fold runs draw a line per fold, in the run's colour")
    return plot + legend(keys) + (folds if len(series) > len(keys) else "")


def _row(label: str, values: Sequence[str], *, diff: bool = False) -> str:
    cells = "".join(f'<td class="num">{escape(v)}</td>' for v in values)
    attrs = ' class="diff"' if diff else ""
    return f"<tr{attrs}><th>{escape(label)}</th>{cells}</tr>"


def _color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]
