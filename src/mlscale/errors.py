"""One exception tree for the whole platform.

Every error a user can cause is a :class:`UserError`: the CLI prints ``error: <message>`` and exits
2, the server answers 4xx with ``{"error": <message>}``. Anything else is a failure of ours or of the
environment (exit 1, HTTP 5xx). Messages name the thing, what was expected and what was found.
"""

from __future__ import annotations


class MlscaleError(Exception):
    """Base of every error mlscale raises on purpose."""

    exit_code = 1
    http_status = 500


class UserError(MlscaleError):
    """Bad input: a file, an argument, a reference or a request the user can fix."""

    exit_code = 2
    http_status = 400


class NotFoundError(UserError, LookupError):
    """A dataset, model, version, alias, run or file that does not exist."""

    http_status = 404


class WorkspaceNotFoundError(NotFoundError):
    """No ``mlscale.toml`` in the directory or any of its parents."""


class DataError(UserError, ValueError):
    """A data file that cannot be read as the format it claims to be."""


class SchemaError(UserError, ValueError):
    """Data that does not match what was expected: a missing column, a wrong type, one class."""

    http_status = 422


class ConfigError(UserError, ValueError):
    """An invalid ``mlscale.toml``, environment variable or option."""


class MissingDependencyError(UserError, ImportError):
    """An optional extra that is not installed; the message carries the ``pip install`` line."""


class IntegrityError(MlscaleError):
    """Stored bytes whose hash no longer matches the recorded one."""
