"""What a run ran on: recorded with every run so results can be traced and reproduced."""

from __future__ import annotations

import os
import platform
import socket
import sys
from importlib import metadata
from typing import Any

_PACKAGES = ("mlscale", "numpy", "pyarrow", "lightgbm", "scikit-learn", "skops")


def capture_environment() -> dict[str, Any]:
    versions = {}
    for package in _PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "cpus": os.cpu_count(),
        "packages": versions,
    }


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024
