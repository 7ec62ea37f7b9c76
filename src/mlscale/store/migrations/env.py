"""Alembic environment for the metadata store.

:func:`mlscale.store.sql._migrate` runs it with an open connection in
``config.attributes["connection"]``, inside a transaction it owns; there is no ``alembic.ini``.
"""

from __future__ import annotations

from alembic import context

from mlscale.store.tables import metadata


def run_migrations() -> None:
    """Migrate the connection the store handed over, inside the store's transaction."""
    context.configure(connection=context.config.attributes["connection"], target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()


# pytest --doctest-modules imports this file too; only Alembic provides context.config.
if getattr(context, "config", None) is not None:
    run_migrations()
