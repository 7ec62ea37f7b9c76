"""Run the HTTP server with uvicorn."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from mlscale.errors import UserError
from mlscale.serve.app import create_app
from mlscale.serve.models import ServedModels

if TYPE_CHECKING:
    from mlscale.workspace import Workspace


def serve(
    ws: Workspace, refs: list[str] | None = None, *, host: str = "127.0.0.1", port: int = 8000
) -> None:
    """Load the served models, then serve until interrupted (Ctrl-C or SIGTERM)."""
    import uvicorn

    models = ServedModels(ws, refs)
    if not models.names:
        raise UserError(
            "no models to serve: promote a version (mlscale models promote NAME VERSION) "
            "or name one (mlscale serve NAME@VERSION)"
        )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("mlscale.serve").info("serving %s", ", ".join(models.loaded()))
    uvicorn.run(create_app(models), host=host, port=port, log_level="warning", access_log=False)
