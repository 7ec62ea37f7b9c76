"""``mlscale dashboard``: the monitoring dashboard on its own, without serving models."""

from __future__ import annotations

import click

from mlscale.cli.output import console
from mlscale.errors import UserError
from mlscale.workspace import Workspace


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8050, show_default=True, type=int)
@click.option(
    "--require-token", is_flag=True, help="Require an admin API token (always on off loopback)."
)
@click.pass_context
def dashboard(ctx: click.Context, host: str, port: int, require_token: bool) -> None:
    """Serve the monitoring dashboard of the workspace's models at /dashboard.

    It reads the registry, the prediction log and the monitor's summaries; error rates come
    from the counters that multi-worker servers share (mlscale serve also shows the dashboard,
    with its own counters, at /dashboard).
    """
    import uvicorn

    from mlscale.dashboard import create_dashboard_app
    from mlscale.serve.server import is_loopback

    ws = Workspace.open(ctx.obj.get("workspace"))
    require_token = require_token or not is_loopback(host)
    if require_token and not any(t.active and t.role == "admin" for t in ws.metadata.list_tokens()):
        raise UserError(
            f"serving the dashboard on {host} requires an admin API token and this workspace "
            "has none; create one with: mlscale tokens create NAME --role admin"
        )
    app = create_dashboard_app(ws, require_token=require_token)
    console.print(f"dashboard on http://{host}:{port}/dashboard")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


ALL = [dashboard]
