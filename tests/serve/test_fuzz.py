"""Fuzz the real server with schemathesis, from its own OpenAPI document."""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from mlscale import Workspace
from mlscale.quickstart.walkthrough import background_server, free_port


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, loans_csv: Path) -> Iterator[str]:
    ws = Workspace.init(tmp_path_factory.mktemp("fuzz") / "ws")
    ws.ingest(loans_csv, name="loans")
    ws.train("loans@1", target="default", exclude=["loan_id"], params={"num_boost_round": 20})
    ws.promote("loans", 1, alias="production")
    with background_server(ws.root, free_port()) as url:
        yield url


def test_no_input_makes_the_server_fail(server: str) -> None:
    document = httpx.get(f"{server}/openapi.json").json()
    assert "/v1/models/loans@production/predict" in document["paths"]
    assert "/v1/models/loans/labels" in document["paths"]  # fuzzed as well
    schema = schemathesis.openapi.from_dict(document)
    # Both valid requests and deliberately invalid ones (wrong types, missing fields, junk).
    strategy = st.one_of(schema.as_strategy(mode) for mode in GenerationMode)

    @given(case=strategy)
    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    def check(case: schemathesis.Case) -> None:
        # Whatever is sent: never a 5xx, always a JSON answer.
        response = case.call_and_validate(base_url=server, checks=[not_a_server_error])
        assert response.headers["content-type"][0].startswith("application/json")

    check()
