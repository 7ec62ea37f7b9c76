"""The monitoring dashboard: models, versions and aliases, traffic, latency, errors, drift over
time, data quality, performance and alerts, on web pages that need no script and nothing from
the network.

Served by ``mlscale serve`` (under ``/dashboard``, admin token when tokens are required) and by
``mlscale dashboard``. :class:`Collector` gathers a page's data (:mod:`~mlscale.dashboard.data`),
:func:`render_overview` and :func:`render_model` turn it into HTML, :class:`Dashboard` serves it
with a short cache, computed off the event loop.
"""

from mlscale.dashboard.app import Dashboard, create_dashboard_app, dashboard_routes
from mlscale.dashboard.counts import CountsHistory, counts_from_files, counts_from_metrics
from mlscale.dashboard.data import (
    WINDOWS,
    AlertView,
    Collector,
    DriftSeries,
    Latest,
    ModelPanel,
    ModelRow,
    Overview,
    PerformanceView,
)
from mlscale.dashboard.page import render_model, render_overview
from mlscale.dashboard.traffic import TrafficIndex, TrafficPoint

__all__ = [
    "WINDOWS",
    "AlertView",
    "Collector",
    "CountsHistory",
    "Dashboard",
    "DriftSeries",
    "Latest",
    "ModelPanel",
    "ModelRow",
    "Overview",
    "PerformanceView",
    "TrafficIndex",
    "TrafficPoint",
    "counts_from_files",
    "counts_from_metrics",
    "create_dashboard_app",
    "dashboard_routes",
    "render_model",
    "render_overview",
]
