import time

import pytest
from starlette.testclient import TestClient
from tests.serve.test_app import feature_rows

from mlscale import UserError, Workspace
from mlscale.serve.app import create_app
from mlscale.serve.models import ServedModels
from mlscale.serve.predlog_reader import read_log
from mlscale.serve.routing import Rule, parse_rules


def test_rules_parse_and_pick_stickily() -> None:
    rules = parse_rules(["loans@production=loans@staging:25"], ["loans@production=loans@3"])
    rule = rules["loans@production"]
    assert (rule.canary, rule.percent, rule.shadow) == ("loans@staging", 25.0, "loans@3")
    picks = {key: rule.pick(key) for key in (f"user-{i}" for i in range(400))}
    assert all(rule.pick(k) == v for k, v in picks.items())  # the same key, the same side
    share = sum(v == "loans@staging" for v in picks.values()) / len(picks)
    assert 0.15 < share < 0.35
    assert Rule("loans@production").pick(None) == "loans@production"
    for bad, message in [
        ("loans@production=loans@staging", "expected SOURCE=TARGET:PERCENT"),
        ("loans@production=loans@staging:x", "is not a percentage"),
        ("loans@production=loans@staging:150", "between 0 and 100"),
        ("loans@production=other@1:5", "same model"),
    ]:
        with pytest.raises(UserError, match=message):
            parse_rules([bad], [])


def test_canary_and_shadow_traffic(trained_ws: Workspace) -> None:
    trained_ws.train("loans@1", target="default", model="logistic")
    trained_ws.promote("loans", 2, alias="staging")
    rules = parse_rules(["loans@production=loans@staging:50"], ["loans@production=loans@2"])
    models = ServedModels(trained_ws, ["loans@staging", "loans@2"])
    url = "/v1/models/loans@production/predict"
    rows = feature_rows(trained_ws, 1)
    with TestClient(create_app(models, rules=rules)) as client:
        answered = {}
        for i in range(40):
            key = f"customer-{i}"
            r = client.post(url, json={"rows": rows}, headers={"x-routing-key": key})
            assert r.status_code == 200
            answered[key] = r.json()["version"]
            again = client.post(url, json={"rows": rows}, headers={"x-routing-key": key})
            assert again.json()["version"] == answered[key]
        assert set(answered.values()) == {1, 2}
        time.sleep(0.2)  # let the shadow queue drain
    log = read_log(trained_ws.root / ".mlscale" / "predictions", model="loans")
    by_request: dict[str, set[int]] = {}
    for rid, version in zip(
        log.column("request_id").to_pylist(), log.column("version").to_pylist(), strict=True
    ):
        by_request.setdefault(rid, set()).add(version)
    # every answered request also ran on the shadow (version 2) and was logged under its id
    assert len(by_request) == 80 and all(2 in v for v in by_request.values())
