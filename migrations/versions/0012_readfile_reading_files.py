"""Reading files: a reading route's CSV taken in once per content, with the rows it did not store.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0012'
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table('reading_files',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('row_count', sa.Integer(), nullable=False),
    sa.Column('accepted', sa.Integer(), nullable=False),
    sa.Column('rejected', sa.Integer(), nullable=False),
    sa.Column('observed', sa.Integer(), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_reading_files_created_by_users')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_reading_files_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reading_files')),
    sa.UniqueConstraint('tenant_id', 'sha256', name=op.f('uq_reading_files_tenant_id_sha256'))
    )
    op.create_table('reading_file_issues',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('reading_file_id', sa.Integer(), nullable=False),
    sa.Column('line', sa.Integer(), nullable=False),
    sa.Column('serial', sa.Unicode(length=40), nullable=False),
    sa.Column('period', sa.Unicode(length=16), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('message', sa.Unicode(length=300), nullable=False),
    sa.CheckConstraint("outcome IN ('rejected', 'observed')", name=op.f('ck_reading_file_issues_outcome_known')),
    sa.ForeignKeyConstraint(['reading_file_id'], ['reading_files.id'], name=op.f('fk_reading_file_issues_reading_file_id_reading_files')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reading_file_issues'))
    )
    with op.batch_alter_table('reading_file_issues', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reading_file_issues_reading_file_id'), ['reading_file_id'], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table('reading_file_issues', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reading_file_issues_reading_file_id'))

    op.drop_table('reading_file_issues')
    op.drop_table('reading_files')
