"""mlscale: tabular machine learning from a file on a laptop to a monitored production service.

The Python API starts at :class:`Workspace`::

    ws = Workspace.init("my-project")
    ws.ingest("loans.csv", name="loans")
    result = ws.train("loans@latest", target="default")
    ws.promote("loans", result.model.version, alias="production")
    ws.predictor("loans@production").predict_records([{...}])
"""

from mlscale.errors import (
    ConfigError,
    DataError,
    IntegrityError,
    MissingDependencyError,
    MlscaleError,
    NotFoundError,
    SchemaError,
    UserError,
    WorkspaceNotFoundError,
)
from mlscale.refs import Ref
from mlscale.workspace import Workspace

__all__ = [
    "ConfigError",
    "DataError",
    "IntegrityError",
    "MissingDependencyError",
    "MlscaleError",
    "NotFoundError",
    "Ref",
    "SchemaError",
    "UserError",
    "Workspace",
    "WorkspaceNotFoundError",
]
