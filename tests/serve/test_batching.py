import asyncio
import time

import numpy as np
import pytest

from mlscale import Workspace
from mlscale.quickstart.loans import generate_loans
from mlscale.serve.batching import Batcher, Overloaded, PredictionTimeout


def matrices(ws: Workspace, n: int) -> tuple[object, list[np.ndarray]]:
    predictor = ws.predictor("loans@production")
    table = generate_loans(n, seed=8, label=False)
    X = predictor.encoder.encode_table(table)
    return predictor, [X[i : i + 1] for i in range(n)]


def test_concurrent_requests_are_batched_and_answered_exactly(trained_ws: Workspace) -> None:
    predictor, rows = matrices(trained_ws, 40)
    calls: list[int] = []
    original = predictor.predict_matrix

    def counting(X: np.ndarray):  # type: ignore[no-untyped-def]
        calls.append(len(X))
        return original(X)

    predictor.predict_matrix = counting  # type: ignore[method-assign]
    batcher = Batcher(predictor)

    async def main() -> list:
        return await asyncio.gather(*(batcher.predict(X) for X in rows))

    results = asyncio.run(main())
    expected = original(np.vstack(rows))
    got = np.vstack([r.probabilities for r in results])
    np.testing.assert_array_equal(got, expected.probabilities)
    assert [r.predictions[0] for r in results] == expected.predictions
    assert sum(calls) == 40 and len(calls) < 40  # fewer model calls than requests


def test_a_full_queue_answers_overloaded(trained_ws: Workspace) -> None:
    predictor, rows = matrices(trained_ws, 10)
    batcher = Batcher(predictor, max_queue=2)

    async def main() -> list:
        return await asyncio.gather(*(batcher.predict(X) for X in rows), return_exceptions=True)

    results = asyncio.run(main())
    overloaded = [r for r in results if isinstance(r, Overloaded)]
    assert overloaded and "requests waiting; retry shortly" in str(overloaded[0])
    assert any(not isinstance(r, Exception) for r in results)


def test_model_errors_reach_every_caller(trained_ws: Workspace) -> None:
    predictor, rows = matrices(trained_ws, 3)

    def broken(X: np.ndarray):  # type: ignore[no-untyped-def]
        raise RuntimeError("model exploded")

    predictor.predict_matrix = broken  # type: ignore[method-assign]
    batcher = Batcher(predictor)

    async def main() -> list:
        return await asyncio.gather(*(batcher.predict(X) for X in rows), return_exceptions=True)

    assert all(isinstance(r, RuntimeError) for r in asyncio.run(main()))

    async def again() -> object:  # a new loop: the batcher starts over on it
        return await batcher.predict(rows[0])

    with pytest.raises(RuntimeError, match="model exploded"):
        asyncio.run(again())


def test_a_request_that_waited_too_long_gets_a_timeout(trained_ws: Workspace) -> None:
    predictor, rows = matrices(trained_ws, 3)
    batcher = Batcher(predictor, timeout_s=0.05, max_batch_rows=1)  # one request per call
    slow = predictor.predict_matrix

    def sleepy(X: np.ndarray):  # type: ignore[no-untyped-def]
        time.sleep(0.1)  # the queue waits behind this prediction
        return slow(X)

    predictor.predict_matrix = sleepy  # type: ignore[method-assign]

    async def main() -> list:
        return await asyncio.gather(*(batcher.predict(X) for X in rows), return_exceptions=True)

    first, *rest = asyncio.run(main())
    assert first.predictions is not None
    assert all(isinstance(r, PredictionTimeout) for r in rest), rest
