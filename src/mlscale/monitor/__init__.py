"""Monitoring: drift and data quality of live traffic against each model version's reference.

The loop: the server appends every prediction to the prediction log; :func:`update_windows`
folds new log rows into per-minute summaries counted on the reference's bins; reports merge the
summaries of any window (:func:`drift_report`, :func:`quality_report`) in O(buckets x bins).
:func:`build_reference` makes the reference from the training rows and the model's predictions
on them; versions trained before that fall back to their training profile.
"""

from mlscale.monitor.drift import DriftReport, FeatureDrift, compare, drift_for_file, drift_report
from mlscale.monitor.quality import ColumnQuality, QualityReport, quality_report
from mlscale.monitor.reference import Reference, attach_reference, build_reference, load_reference
from mlscale.monitor.summary import Summarizer, WindowSummary
from mlscale.monitor.windows import UpdateResult, Window, load_window, update_windows

__all__ = [
    "ColumnQuality",
    "DriftReport",
    "FeatureDrift",
    "QualityReport",
    "Reference",
    "Summarizer",
    "UpdateResult",
    "Window",
    "WindowSummary",
    "attach_reference",
    "build_reference",
    "compare",
    "drift_for_file",
    "drift_report",
    "load_reference",
    "load_window",
    "quality_report",
    "update_windows",
]
