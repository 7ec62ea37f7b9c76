"""Runs get artifacts and a parent (tuning trials under their study); alias moves say who and why.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("artifacts", sa.JSON, nullable=False, server_default="{}"))
        batch.add_column(sa.Column("parent_id", sa.String(32), nullable=True))
        batch.create_index("ix_runs_parent_id", ["parent_id"])
    with op.batch_alter_table("alias_events") as batch:
        batch.add_column(sa.Column("actor", sa.String(128), nullable=True))
        batch.add_column(sa.Column("reason", sa.Text, nullable=True))
        # An alias can be removed (undoing its first move): that event has no target version.
        batch.alter_column("to_version", existing_type=sa.Integer, nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("alias_events") as batch:
        batch.alter_column("to_version", existing_type=sa.Integer, nullable=False)
        batch.drop_column("reason")
        batch.drop_column("actor")
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_parent_id")
        batch.drop_column("parent_id")
        batch.drop_column("artifacts")
