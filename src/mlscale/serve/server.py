"""Run the HTTP server with uvicorn: one process per core by default, each with its own models."""

from __future__ import annotations

import gc
import ipaddress
import json
import logging
import os
import shutil
import sys
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette

from mlscale.errors import UserError
from mlscale.serve.app import create_app
from mlscale.serve.models import ServedModels
from mlscale.serve.routing import parse_rules

if TYPE_CHECKING:
    from mlscale.workspace import Workspace

# How the supervisor tells worker processes what to serve (they import the app by name).
ENV_ROOT = "MLSCALE_SERVE_ROOT"
ENV_REFS = "MLSCALE_SERVE_REFS"
ENV_OPTIONS = "MLSCALE_SERVE_OPTIONS"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
GIL_SWITCH_S = 0.0005


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: assume it is reachable from elsewhere


def app_from_env() -> Starlette:
    """The app of one worker process (uvicorn factory)."""
    from mlscale.workspace import Workspace

    options = json.loads(os.environ.get(ENV_OPTIONS, "{}"))
    _configure_logging(options.pop("access_log", False))
    options["rules"] = parse_rules(options.pop("canaries", []), options.pop("shadows", []))
    ws = Workspace.open(os.environ[ENV_ROOT])
    app = create_app(ServedModels(ws, json.loads(os.environ.get(ENV_REFS, "[]"))), **options)
    _settle_for_serving()
    return app


def _settle_for_serving() -> None:
    """Process settings for a long-running, latency-bound server, once everything is loaded."""
    # Everything loaded by now (libraries, models) lives as long as the server: keep it out of
    # the cyclic collector, whose full passes over it were stalls of ~100 ms under load.
    gc.collect()
    gc.freeze()
    # The once-a-second threads (alias watcher, metrics sharing) hold the GIL for up to the
    # switch interval whenever they run Python code; 5 ms by default, a request's whole budget.
    sys.setswitchinterval(GIL_SWITCH_S)


def _configure_logging(access_log: bool) -> None:
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    # One JSON line per request when asked for: a few microseconds each, on the hot path.
    logging.getLogger("mlscale.access").setLevel(logging.INFO if access_log else logging.WARNING)


def serve(
    ws: Workspace,
    refs: list[str] | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int | None = None,
    access_log: bool = False,
    log_predictions: bool = True,
    unseen: str = "unknown",
    cache_size: int = 0,
    canaries: list[str] | None = None,
    shadows: list[str] | None = None,
    require_token: bool = False,
    certfile: str | None = None,
    keyfile: str | None = None,
) -> None:
    """Load the served models, then serve until interrupted (Ctrl-C or SIGTERM).

    Tokens are required on any address but loopback (or with ``require_token``); TLS when a
    certificate and key are given.
    """
    import uvicorn

    require_token = require_token or not is_loopback(host)
    if require_token and not any(t.active for t in ws.metadata.list_tokens()):
        raise UserError(
            f"serving on {host} requires API tokens and this workspace has none; "
            "create one with: mlscale tokens create NAME --role predict"
        )
    if (certfile is None) != (keyfile is None):
        raise UserError("TLS needs both --certfile and --keyfile")
    for path in (certfile, keyfile):
        if path is not None and not os.path.isfile(path):
            raise UserError(f"no such file: {path}")

    rules = parse_rules(canaries or [], shadows or [])
    targets = [r for rule in rules.values() for r in (rule.source, rule.canary, rule.shadow) if r]
    refs = [*(refs or []), *targets]
    models = ServedModels(ws, refs)  # bad references fail here, before any worker starts
    if not models.names:
        raise UserError(
            "no models to serve: promote a version (mlscale models promote NAME VERSION) "
            "or name one (mlscale serve NAME@VERSION)"
        )
    workers = workers or os.cpu_count() or 1
    if workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    _configure_logging(access_log)
    logging.getLogger("mlscale.serve").info(
        "serving %s with %d worker(s)", ", ".join(models.loaded()), workers
    )
    options: dict[str, Any] = {
        "host": host, "port": port, "log_level": "warning", "access_log": False,
        "ssl_certfile": certfile, "ssl_keyfile": keyfile,
    }  # fmt: skip
    if workers == 1:
        app = create_app(
            models,
            log_predictions=log_predictions,
            unseen=unseen,
            cache_size=cache_size,
            rules=rules,
            require_token=require_token,
        )
        _settle_for_serving()
        uvicorn.run(app, **options)
        return
    os.environ[ENV_ROOT] = str(ws.root)
    os.environ[ENV_REFS] = json.dumps(refs or [])
    metrics_dir = ws.root / ".mlscale" / "run" / f"metrics-{port}"
    shutil.rmtree(metrics_dir, ignore_errors=True)  # counters start at zero with the server
    os.environ[ENV_OPTIONS] = json.dumps(
        {
            "access_log": access_log,
            "log_predictions": log_predictions,
            "metrics_dir": str(metrics_dir),
        }
    )
    uvicorn.run(f"{__name__}:app_from_env", factory=True, workers=workers, **options)
