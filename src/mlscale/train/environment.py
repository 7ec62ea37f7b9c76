"""What a run ran on: recorded with every run so results can be traced and reproduced."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

_PACKAGES = (
    "mlscale",
    "numpy",
    "pyarrow",
    "lightgbm",
    "xgboost",
    "scikit-learn",
    "skops",
    "torch",
    "optuna",
    "ray",
)


def capture_environment(cwd: Path | None = None) -> dict[str, Any]:
    """Python and package versions, host, CPUs and GPUs, and the git commit of ``cwd``."""
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
        "cpu": platform.processor() or platform.machine(),
        "gpus": gpus(),
        "git": git_state(cwd or Path.cwd()),
        "packages": versions,
    }


def git_state(folder: Path) -> dict[str, Any] | None:
    """The commit checked out in ``folder`` and whether the tree has changes; None outside git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=5
        )
        if commit.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}


def gpus() -> list[str]:
    """CUDA devices visible to PyTorch when it is already imported, else to nvidia-smi."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024
