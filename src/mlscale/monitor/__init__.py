"""Monitoring: drift and data quality of live traffic against each model version's reference.

The loop: the server appends every prediction to the prediction log; :func:`update_windows`
folds new log rows into per-minute summaries counted on the reference's bins; reports merge the
summaries of any window (:func:`drift_report`, :func:`quality_report`) in O(buckets x bins).
:func:`build_reference` makes the reference from the training rows and the model's predictions
on them; versions trained before that fall back to their training profile.

Delayed labels (:func:`ingest_labels`, from files or ``POST /v1/models/{name}/labels``) join the
logged predictions by row id; :func:`performance_report` gives the realised metrics per window of
prediction time and, for classifiers, the confidence-based estimate while labels are missing.
"""

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
    "ColumnQuality",
    "DriftReport",
    "FeatureDrift",
    "IndexResult",
    "LabelResult",
    "LabelStatus",
    "PerformanceReport",
    "QualityReport",
    "Reference",
    "Summarizer",
    "UpdateResult",
    "Window",
    "WindowPerformance",
    "WindowSummary",
    "attach_reference",
    "build_reference",
    "calibration_verdict",
    "compare",
    "drift_for_file",
    "drift_report",
    "estimate",
    "expected_auc",
    "ingest_labels",
    "label_status",
    "load_reference",
    "load_window",
    "performance_report",
    "performance_windows",
    "quality_report",
    "update_index",
    "update_windows",
]
