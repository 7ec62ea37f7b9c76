"""Our own errors back out of Ray's wrappers, so a UserError from a worker still reads as one."""

from __future__ import annotations

from mlscale.errors import MlscaleError


def mlscale_cause(exc: BaseException, depth: int = 0) -> MlscaleError | None:
    """The innermost MlscaleError in ``exc``'s chain (Ray wraps a task's error, often twice).

    >>> from mlscale.errors import DataError
    >>> try:
    ...     try:
    ...         raise DataError("bad value")
    ...     except DataError as inner:
    ...         raise RuntimeError("a task failed") from inner
    ... except RuntimeError as outer:
    ...     print(repr(mlscale_cause(outer)))
    DataError('bad value')
    """
    if depth > 8:
        return None
    # Ray's RayTaskError keeps the task's exception as ``cause``; Ray Train's WorkerGroupError
    # keeps one per worker in ``worker_failures``.
    inners = [getattr(exc, "cause", None), exc.__cause__, exc.__context__]
    inners += list((getattr(exc, "worker_failures", None) or {}).values())
    for inner in inners:
        if isinstance(inner, BaseException) and inner is not exc:
            found = mlscale_cause(inner, depth + 1)
            if found is not None:
                return found
    return exc if isinstance(exc, MlscaleError) else None
