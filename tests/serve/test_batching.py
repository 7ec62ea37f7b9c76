import asyncio

import numpy as np
import pytest

from mlscale import Workspace
from mlscale.quickstart.loans import generate_loans
from mlscale.serve.batching import Batcher, Overloaded


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
    with pytest.raises(RuntimeError):
        asyncio.run(batcher.predict(rows[0]))
