from pathlib import Path

import numpy as np

from mlscale import Workspace
from mlscale.monitor.drift import js_distance, psi


def test_same_population_is_stable_shifted_one_drifts(
    trained_ws: Workspace, fresh_csv: Path, shifted_csv: Path
) -> None:
    calm = trained_ws.drift("loans@production", fresh_csv)
    assert calm.drifted == []
    assert calm.rows == 2_000
    shifted = trained_ws.drift("loans@production", shifted_csv)
    verdicts = {f.feature: f.verdict for f in shifted.features}
    assert {"annual_income", "interest_rate", "purpose", "state"} <= set(shifted.drifted)
    for unchanged in ("age", "term_months", "home_ownership", "num_open_accounts"):
        assert verdicts[unchanged] == "stable", unchanged
    data = shifted.to_dict()
    assert data["share_drifted"] == len(shifted.drifted) / len(shifted.features)


def test_statistics() -> None:
    a = np.array([100.0, 100, 100, 100])
    assert psi(a, a) == 0.0 and js_distance(a, a) == 0.0
    b = np.array([10.0, 10, 10, 370])
    assert psi(a, b) > 0.2 and 0.1 < js_distance(a, b) < 1
    assert np.isfinite(psi(a, np.array([0.0, 0, 0, 400])))  # an empty bin is not infinite
