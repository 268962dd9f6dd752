"""Collection-file exceptions an operator resolves (issue 17 §3): how, why, who and when.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RESOLUTION_KNOWN = "resolution IS NULL OR resolution IN ('returned_to_bank', 'applied_by_hand', 'written_off')"


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table('collection_file_details') as batch:
        batch.add_column(sa.Column('resolution', sa.String(length=20), nullable=True))
        batch.add_column(sa.Column('resolution_note', sa.Unicode(length=500), nullable=True))
        batch.add_column(sa.Column('resolved_by', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True))
        batch.create_foreign_key(op.f('fk_collection_file_details_resolved_by_users'), 'users', ['resolved_by'], ['id'])
        batch.create_check_constraint(op.f('ck_collection_file_details_resolution_known'), RESOLUTION_KNOWN)


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table('collection_file_details') as batch:
        batch.drop_constraint(op.f('ck_collection_file_details_resolution_known'), type_='check')
        batch.drop_constraint(op.f('fk_collection_file_details_resolved_by_users'), type_='foreignkey')
        batch.drop_column('resolved_at')
        batch.drop_column('resolved_by')
        batch.drop_column('resolution_note')
        batch.drop_column('resolution')
