"""One real local Ray instance for the whole test session, started by the first test that asks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def ray_address() -> Iterator[str]:
    """The address of a local Ray instance with 2 CPUs (starting one takes a few seconds)."""
    from mlscale.compute.ray import connect

    ray = connect("local", num_cpus=2)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
