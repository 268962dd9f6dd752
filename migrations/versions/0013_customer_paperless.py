"""Customers choose paper or email-only invoices (PATCH /api/v1/me).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("paperless", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("paperless")
