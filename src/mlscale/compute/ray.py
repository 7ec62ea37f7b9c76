"""The Ray backend: connect to a cluster (or start one in this process) and run work on it.

Three kinds of work run on Ray, each in a module of its own:

- data-parallel GBDT training with Ray Train (:mod:`mlscale.compute.ray_train`),
- parallel tuning trials, :func:`run_parallel` (the seam :mod:`mlscale.compute.local` also has),
- batch scoring with Ray Data (:mod:`mlscale.compute.ray_data`).

Workers read the workspace (models, datasets, the tuning study) by its path, so on a cluster of
several machines the workspace must be on storage every node mounts at the same path; a cluster
started with ``ray start --head`` on this machine shares it by construction.

ray is an optional extra (``pip install "mlscale[ray]"``), imported when first used.

>>> parse_address("10.0.0.5")
('10.0.0.5', 6379)
>>> parse_address("ray://head")
('head', 10001)
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any, TypeVar

from mlscale._lazy import require
from mlscale.compute.ray_data import predict_file_ray
from mlscale.compute.ray_train import DISTRIBUTED_MODELS, check_distributed, fit_distributed
from mlscale.errors import UserError

__all__ = [
    "DISTRIBUTED_MODELS",
    "check_distributed",
    "connect",
    "fit_distributed",
    "parse_address",
    "predict_file_ray",
    "run_parallel",
]

T = TypeVar("T")

#: Seconds to wait for a Ray head to answer before saying it does not.
CONNECT_TIMEOUT = 3.0
#: How long cancelled tuning workers get to record where they stopped.
GRACE_SECONDS = 30.0
DEFAULT_PORT = 6379  # `ray start --head` listens here unless told otherwise
CLIENT_PORT = 10001  # and its Ray Client server (ray://) here


def parse_address(address: str) -> tuple[str, int]:
    """``(host, port)`` of a Ray address: ``HOST[:PORT]`` or ``ray://HOST[:PORT]``."""
    rest = address.removeprefix("ray://")
    host, sep, port = rest.rpartition(":")
    if not sep:
        return rest, CLIENT_PORT if address.startswith("ray://") else DEFAULT_PORT
    if not port.isdigit() or not host:
        raise UserError(f"--address {address!r}: expected HOST:PORT, e.g. 127.0.0.1:6379")
    return host.strip("[]"), int(port)


def connect(address: str | None = None, *, num_cpus: int | None = None) -> ModuleType:
    """The ``ray`` module, connected to the cluster at ``address`` or to a new local instance.

    ``address`` defaults to ``$MLSCALE_RAY_ADDRESS``, then ``$RAY_ADDRESS``; without one (or
    with ``"local"``) a new Ray instance starts in this process with ``num_cpus`` CPUs (default:
    every core). A Ray already started in this process is reused, whatever ``address`` says.
    An address that does not answer is a UserError within a few seconds (see :func:`probe`):
    ``ray.init`` itself would keep retrying for minutes.
    """
    ray = require("ray", extra="ray")
    address = address or os.environ.get("MLSCALE_RAY_ADDRESS") or os.environ.get("RAY_ADDRESS")
    if address == "local":
        address = None
    if address is not None and address != "auto":
        probe(address)
    if ray.is_initialized():
        return ray
    # Workers' output (LightGBM's, Ray Train's status lines) stays in Ray's log files: the CLI
    # prints its own progress. Errors still come back as exceptions.
    options: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR}
    try:
        if address is None:
            # "local", not None: None would join whatever cluster `ray start` last started.
            ray.init("local", num_cpus=num_cpus, include_dashboard=False, **options)
        else:
            ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = address or "a new local instance"
        raise UserError(f"cannot connect to Ray at {where}: {_first_line(exc)}") from exc
    return ray


def probe(address: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Raise a UserError unless a Ray head at ``address`` answers and accepts this machine.

    A plain TCP connection first (refused or silent: nobody there), then the head's own
    ``GetClusterId`` call, with the Ray token if this machine has one: a port that is not a
    Ray head, or a head that wants a token, would make ``ray.init`` retry for minutes.
    """
    host, port = parse_address(address)
    hint = (
        "start a cluster with `ray start --head` (it listens on port 6379), "
        "or leave out --address to run Ray in this process"
    )
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else exc.strerror or str(exc)
        raise UserError(f"no Ray cluster answers at {address} ({reason}); {hint}") from None
    if address.startswith("ray://") or os.environ.get("RAY_USE_TLS", "0") not in ("0", ""):
        return  # a Ray Client server has no GetClusterId; a TLS head needs Ray's own client
    token = _token_header()
    code = _ask_cluster_id(host, port, token, timeout)
    if code == "OK":
        if token and "RAY_AUTH_MODE" not in os.environ:
            # As Ray does for address="auto": send this machine's token (a cluster without
            # token authentication ignores it).
            os.environ["RAY_AUTH_MODE"] = "token"
            from ray._raylet import Config

            Config.initialize("")  # Ray reads its settings once; read them again
        return
    if code == "UNAUTHENTICATED":
        where = "its token" if not token else "this machine's token"
        raise UserError(
            f"the Ray cluster at {address} requires a token and did not accept {where}; "
            "put the cluster's token (`ray get-auth-token` on its head) in ~/.ray/auth_token "
            "or $RAY_AUTH_TOKEN"
        )
    raise UserError(
        f"{address} accepts connections but is not a Ray cluster (asked for its cluster id: "
        f"{code.lower().replace('_', ' ')}); check the host and port, or {hint}"
    )


def _token_header() -> tuple[tuple[str, str], ...]:
    """The ``authorization`` header for this machine's Ray token, if it has one."""
    try:
        from ray._raylet import AuthenticationTokenLoader
    except ImportError:  # a Ray without token authentication
        return ()
    loader = AuthenticationTokenLoader.instance()
    if not loader.has_token(ignore_auth_mode=True):
        return ()
    return tuple(loader.get_token_for_http_header().items())


def _ask_cluster_id(
    host: str, port: int, metadata: tuple[tuple[str, str], ...], timeout: float
) -> str:
    """The gRPC status name of the head's answer to ``GetClusterId`` ("OK" when it answers)."""
    import grpc
    from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

    with grpc.insecure_channel(f"{host}:{port}") as channel:
        stub = gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel)
        try:
            stub.GetClusterId(
                gcs_service_pb2.GetClusterIdRequest(), timeout=timeout, metadata=metadata
            )
        except grpc.RpcError as exc:
            return str(exc.code().name)
    return "OK"


def run_parallel(
    fn: Callable[[int], T],
    n_workers: int,
    *,
    address: str | None = None,
    poll: Callable[[], None] | None = None,
    poll_interval: float = 0.5,
) -> list[T]:
    """``[fn(0), ..., fn(n_workers - 1)]``, each call a Ray task of one CPU.

    The seam of :func:`mlscale.compute.local.run_parallel`, on Ray: ``poll`` is called every
    ``poll_interval`` seconds while the tasks run; the first error raised in a task cancels the
    others and is raised here. Ctrl-C cancels the tasks (each sees a KeyboardInterrupt, so a
    tuning trial records itself as interrupted), waits for them, and raises KeyboardInterrupt.
    """
    ray = connect(address)
    task = ray.remote(num_cpus=1, max_retries=0)(_call)
    refs = [task.remote(fn, i) for i in range(n_workers)]
    index = {ref: i for i, ref in enumerate(refs)}
    results: dict[int, Any] = {}
    pending = list(refs)
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=poll_interval)
            for ref in done:
                results[index[ref]] = _get(ray, ref, index[ref])
            if poll is not None:
                poll()
    except BaseException:
        _cancel(ray, pending)
        raise
    return [results[i] for i in range(n_workers)]


def _call(fn: Callable[[int], T], index: int) -> T:
    return fn(index)


def _get(ray: ModuleType, ref: Any, index: int) -> Any:
    """The task's result, or the exception it raised (not Ray's wrapper around it)."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = exc.cause if isinstance(exc.cause, BaseException) else None
        if cause is None:
            raise
        # str() of Ray's error is the task's traceback, as the worker printed it.
        cause.add_note(f"in Ray worker {index}:\n{exc}")
        raise cause from None


def _cancel(ray: ModuleType, refs: list[Any]) -> None:
    """KeyboardInterrupt into running tasks, GRACE_SECONDS to finish, then force them out."""
    for ref in refs:
        ray.cancel(ref)
    deadline = time.monotonic() + GRACE_SECONDS
    remaining = list(refs)
    while remaining and time.monotonic() < deadline:
        _, remaining = ray.wait(remaining, num_returns=len(remaining), timeout=0.5)
    for ref in remaining:
        ray.cancel(ref, force=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
