"""Tuning fixtures: a workspace with loans@1 and a small, fast search space."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlscale import Workspace

#: Few rounds, small trees, one thread: a trial takes milliseconds on 3,000 rows.
SMALL_SPACE = """\
inherit_defaults: false
num_boost_round: 40
learning_rate: {low: 0.01, high: 0.3, log: true}
num_leaves: {low: 4, high: 64, log: true}
num_threads: 1
"""


@pytest.fixture
def loans_ws(ws: Workspace, loans_csv: Path) -> Workspace:
    ws.ingest(loans_csv, name="loans")
    return ws


@pytest.fixture
def small_space(tmp_path: Path) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(SMALL_SPACE, encoding="utf-8")
    return path
