"""Monitoring: drift and data quality of live traffic against each model version's reference.

The loop: the server appends every prediction to the prediction log; :func:`update_windows`
folds new log rows into per-minute summaries counted on the reference's bins; reports merge the
summaries of any window (:func:`drift_report`, :func:`quality_report`) in O(buckets x bins).
:func:`build_reference` makes the reference from the training rows and the model's predictions
on them; versions trained before that fall back to their training profile.

Delayed labels (:func:`ingest_labels`, from files or ``POST /v1/models/{name}/labels``) join the
logged predictions by row id; :func:`performance_report` gives the realised metrics per window of
prediction time and, for classifiers, the confidence-based estimate while labels are missing.
:func:`evaluate_alerts` applies the rules of ``monitor.yaml`` to any of these figures per window,
records firing and resolved events (:func:`alert_events`) and sends them to the log and webhooks.
"""

from mlscale.monitor.alert_rules import (
    AlertConfig,
    AlertRulesError,
    Rule,
    Webhook,
    load_alert_config,
    loads_alert_config,
)
from mlscale.monitor.alert_sinks import AlertNotifier
from mlscale.monitor.alerts import (
    ActiveAlert,
    AlertEvaluation,
    AlertEvent,
    RuleResult,
    active_alerts,
    alert_events,
    evaluate_alerts,
)
from mlscale.monitor.drift import DriftReport, FeatureDrift, compare, drift_for_file, drift_report
from mlscale.monitor.labels import LabelResult, LabelStatus, ingest_labels, label_status
from mlscale.monitor.performance import (
    PerformanceReport,
    WindowPerformance,
    calibration_verdict,
    estimate,
    expected_auc,
    performance_report,
    performance_windows,
)
from mlscale.monitor.prediction_index import IndexResult, update_index
from mlscale.monitor.quality import ColumnQuality, QualityReport, quality_report
from mlscale.monitor.reference import Reference, attach_reference, build_reference, load_reference
from mlscale.monitor.summary import Summarizer, WindowSummary
from mlscale.monitor.windows import UpdateResult, Window, load_window, update_windows

__all__ = [
    "ActiveAlert",
    "AlertConfig",
    "AlertEvaluation",
    "AlertEvent",
    "AlertNotifier",
    "AlertRulesError",
    "ColumnQuality",
    "DriftReport",
    "FeatureDrift",
    "IndexResult",
    "LabelResult",
    "LabelStatus",
    "PerformanceReport",
    "QualityReport",
    "Reference",
    "Rule",
    "RuleResult",
    "Summarizer",
    "UpdateResult",
    "Webhook",
    "Window",
    "WindowPerformance",
    "WindowSummary",
    "active_alerts",
    "alert_events",
    "attach_reference",
    "build_reference",
    "calibration_verdict",
    "compare",
    "drift_for_file",
    "drift_report",
    "estimate",
    "evaluate_alerts",
    "expected_auc",
    "ingest_labels",
    "label_status",
    "load_alert_config",
    "load_reference",
    "load_window",
    "loads_alert_config",
    "performance_report",
    "performance_windows",
    "quality_report",
    "update_index",
    "update_windows",
]
