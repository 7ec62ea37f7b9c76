"""One run as a page: its metrics, its evaluation plots, its learning curve, params and environment.

The evaluation is the JSON of :func:`mlscale.train.evaluation.evaluation_details` (the run's
``evaluation`` artifact): a confusion matrix, ROC and precision-recall curves and a reliability
diagram for classifiers; residual plots for regressors.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

from mlscale.reports.html import card, kv_table, note, number, page, summary
from mlscale.reports.runs import (
    describe,
    environment_rows,
    flat_params,
    loss_curves,
    ordered_metrics,
    seconds,
    short_id,
)
from mlscale.reports.svg import PALETTE, Band, Series, chart, heatmap, histogram

if TYPE_CHECKING:
    from mlscale.store.records import Run

#: Classes drawn on a one-vs-rest ROC or PR chart; more lines would be unreadable.
MAX_CLASS_CURVES = 10


def evaluation_page(
    run: Run, evaluation: dict[str, Any] | None, curves: dict[str, Any] | None = None
) -> str:
    """The run's page as self-contained HTML; without an evaluation it says so.

    >>> from datetime import datetime
    >>> from mlscale.store.records import Run
    >>> run = Run("0123456789ab", "train", "finished", {"model": "lightgbm"}, {"auc": 0.91},
    ...           "loans@1", {}, datetime(2025, 1, 1), None, 3.2)
    >>> html = evaluation_page(run, None, {"valid_loss": [0.6, 0.5, 0.45]})
    >>> "no evaluation recorded" in html, html.count("<svg")
    (True, 1)
    """
    cards = []
    if evaluation is None:
        cards.append(
            card(
                "Evaluation",
                note("no evaluation recorded for this run (the run has no 'evaluation' artifact)"),
            )
        )
    elif evaluation.get("task") == "regression":
        cards += _regression_cards(evaluation)
    else:
        cards += _classifier_cards(evaluation)
    learning = learning_curve(curves)
    if learning:
        cards.append(card("Learning curve", learning))
    cards.append(card("Parameters", kv_table(flat_params(run.params).items())))
    cards.append(card("Environment", kv_table(environment_rows(run))))
    if run.artifacts:
        cards.append(card("Artifacts", kv_table(sorted(run.artifacts.items()))))
    if run.error:
        cards.append(card("Error", f"<pre>{escape(run.error)}</pre>", wide=True))
    figures = [(number(run.metrics[m]), m) for m in ordered_metrics(run.metrics)[:6]]
    if evaluation is not None:
        figures.append((f"{evaluation['rows']:,}", "rows evaluated"))
    figures.append((seconds(run.duration_s) or run.status, "wall time"))
    subtitle = f"{describe(run)}; {run.status}; started {run.started_at:%Y-%m-%d %H:%M:%S}"
    if run.env.get("model_version"):
        subtitle += f"; produced {run.env['model_version']}"
    return page(
        f"Run {short_id(run.id)}",
        summary(figures) + f'<main class="cards">{"".join(cards)}</main>',
        subtitle=subtitle,
    )


def learning_curve(curves: dict[str, Any] | None, *, color: str = PALETTE[0]) -> str:
    """Validation loss per iteration (a line per fold for k-fold runs); empty without curves."""
    lines = loss_curves(curves)
    if not lines:
        return ""
    series = [
        Series(name, range(1, len(ys) + 1), ys, color=PALETTE[i % len(PALETTE)])
        for i, (name, ys) in enumerate(lines)
    ]
    if len(series) == 1:
        series = [Series(series[0].name, series[0].xs, series[0].ys, color=color)]
    return chart(series, label="learning curve", x_label="iteration", y_label="validation loss")


# -- classifiers ------------------------------------------------------------------------------
def _classifier_cards(ev: dict[str, Any]) -> list[str]:
    cm = ev["confusion_matrix"]
    labels = [str(c) for c in cm["labels"]]
    correct = sum(cm["matrix"][i][i] for i in range(len(labels)))
    total = sum(map(sum, cm["matrix"])) or 1
    out = [
        card(
            "Confusion matrix",
            heatmap(cm["matrix"], labels, label="confusion matrix")
            + note(
                f"{correct:,} of {total:,} rows on the diagonal ({correct / total:.1%}); "
                "cells are shaded by the share of their actual class"
            ),
        )
    ]
    roc, pr = ev.get("roc", []), ev.get("pr", [])
    if roc:
        shown, cut = roc[:MAX_CLASS_CURVES], _cut_note(roc)
        series = [
            Series(
                f"{c['class']} (AUC {c['auc']:.3f})",
                c["fpr"],
                c["tpr"],
                color=PALETTE[i % len(PALETTE)],
            )
            for i, c in enumerate(shown)
        ]
        badge = f"AUC {roc[0]['auc']:.3f}" if len(roc) == 1 else "one-vs-rest"
        plot = chart(
            series,
            label="ROC curve",
            x_label="false positive rate",
            y_label="true positive rate",
            x_range=(0, 1),
            y_range=(0, 1),
            diagonal=True,
        )
        out.append(card("ROC curve", plot + cut, badge=badge))
    if pr:
        shown, cut = pr[:MAX_CLASS_CURVES], _cut_note(pr)
        series = [
            Series(
                f"{c['class']} (AP {c['average_precision']:.3f})",
                c["recall"],
                c["precision"],
                color=PALETTE[i % len(PALETTE)],
            )
            for i, c in enumerate(shown)
        ]
        baselines = [
            (c["prevalence"], f"{c['class']}: prevalence {c['prevalence']:.3f} (chance)")
            for c in shown
        ]
        badge = f"AP {pr[0]['average_precision']:.3f}" if len(pr) == 1 else "one-vs-rest"
        plot = chart(
            series,
            label="precision-recall curve",
            x_label="recall",
            y_label="precision",
            x_range=(0, 1),
            y_range=(0, 1),
            hlines=baselines[:1] if len(shown) == 1 else [],
        )
        out.append(card("Precision-recall curve", plot + cut, badge=badge))
    if not roc:
        out.append(card("ROC curve", note("no curve: the evaluated rows hold a single class")))
    out.append(_reliability_card(ev["calibration"]))
    return out


def _reliability_card(cal: dict[str, Any]) -> str:
    bins = cal["bins"]
    tips = [
        f"{b['lower']:.1f} to {b['upper']:.1f}: {b['count']:,} rows, "
        f"mean predicted {b['mean_predicted']:.3f}, observed {b['observed']:.3f}"
        for b in bins
    ]
    plot = chart(
        [
            Series(
                "observed frequency",
                [b["mean_predicted"] for b in bins],
                [b["observed"] for b in bins],
                markers=True,
                tips=tips,
            )
        ],
        label="reliability diagram",
        x_label=f"mean predicted probability ({cal['scored']})",
        y_label="observed frequency",
        x_range=(0, 1),
        y_range=(0, 1),
        diagonal=True,
    )
    counts = kv_table(
        [
            ("verdict", cal["verdict"]),
            ("expected calibration error", cal["ece"]),
            ("chance level on these rows", cal["noise_ece"]),
            ("Brier score", cal["brier"]),
        ]
    )
    well = cal["well_calibrated"]
    badge_class = "good" if well else "bad"
    badge = f'<span class="badge {badge_class}">{"calibrated" if well else "miscalibrated"}</span>'
    return (
        f'<section class="card"><h2>Calibration{badge}</h2>{plot}{counts}'
        + note("points on the dashed diagonal: predicted probabilities match observed frequency")
        + "</section>"
    )


def _cut_note(curves: list[dict[str, Any]]) -> str:
    if len(curves) <= MAX_CLASS_CURVES:
        return ""
    return note(f"the first {MAX_CLASS_CURVES} of {len(curves)} classes are drawn")


# -- regressors -------------------------------------------------------------------------------
def _regression_cards(ev: dict[str, Any]) -> list[str]:
    res, hist = ev["residuals"], ev["histogram"]
    outside = hist["below"] + hist["above"]
    residual_plot = histogram(
        hist["edges"], hist["counts"], label="residuals histogram", x_label="actual − predicted"
    )
    if outside:
        residual_plot += note(
            f"axis shows p01 to p99; {hist['below']:,} rows below and {hist['above']:,} above"
        )
    summary_rows = [(k, res[k]) for k in ("mean", "std", "mae", "rmse", "min")]
    summary_rows += [(k, v) for k, v in res.items() if k.startswith("p")] + [("max", res["max"])]
    out = [
        card("Residuals", residual_plot + kv_table(summary_rows), badge="actual − predicted"),
    ]
    sc = ev["scatter"]
    both = [*sc["predicted"], *sc["actual"]]
    span = (min(both), max(both)) if both else (0.0, 1.0)
    tips = [
        f"predicted {number(p)}, actual {number(a)}"
        for p, a in zip(sc["predicted"], sc["actual"], strict=True)
    ]
    scatter = chart(
        [Series("rows", sc["predicted"], sc["actual"], line=False, markers=True, tips=tips)],
        label="predicted vs actual",
        x_label="predicted",
        y_label="actual",
        x_range=span,
        y_range=span,
        diagonal=True,
    )
    if sc["sampled"]:
        scatter += note(f"a sample of {len(sc['predicted']):,} of the {ev['rows']:,} rows")
    out.append(card("Predicted vs actual", scatter))
    bins = ev["by_predicted"]
    xs = [b["mean_predicted"] for b in bins]
    by_bin = chart(
        [
            Series(
                "mean residual",
                xs,
                [b["mean"] for b in bins],
                markers=True,
                tips=[
                    f"predicted {number(b['lower'])} to {number(b['upper'])}: {b['count']:,} rows, "
                    f"mean residual {number(b['mean'])}, p10 {number(b['p10'])}, "
                    f"p90 {number(b['p90'])}"
                    for b in bins
                ],
            )
        ],
        label="residuals by predicted value",
        x_label="predicted (bin mean)",
        y_label="residual",
        hlines=[(0.0, "no bias")],
        bands=[Band(xs, [b["p10"] for b in bins], [b["p90"] for b in bins])],
    )
    out.append(
        card(
            "Residuals by predicted value",
            by_bin + note("mean residual per decile of the prediction; the band is p10 to p90"),
        )
    )
    return out
