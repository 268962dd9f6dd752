"""Bank collection files (Asobancaria 2001): the files and each detail's outcome; receipts may come from a file.

A receipt written for a file an operator uploaded has no bank API key, so `bank_api_key_id` becomes
nullable (its foreign key steps aside while SQL Server alters the column), and it records the file.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RECEIPT_KEY_FK = 'fk_collection_receipts_bank_api_key_id_bank_api_keys'


def upgrade() -> None:
    """Apply this revision."""
    op.create_table('collection_files',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('file_hash', sa.String(length=64), nullable=False),
    sa.Column('bank_code', sa.String(length=3), nullable=False),
    sa.Column('biller_nit', sa.String(length=10), nullable=False),
    sa.Column('collection_date', sa.Date(), nullable=False),
    sa.Column('bank_api_key_id', sa.Integer(), nullable=True),
    sa.Column('uploaded_by', sa.Integer(), nullable=True),
    sa.Column('detail_count', sa.Integer(), nullable=False),
    sa.Column('total', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('applied_count', sa.Integer(), nullable=False),
    sa.Column('applied_total', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('exception_count', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('reconciled', 'with_exceptions')", name=op.f('ck_collection_files_status_known')),
    sa.ForeignKeyConstraint(['bank_api_key_id'], ['bank_api_keys.id'], name=op.f('fk_collection_files_bank_api_key_id_bank_api_keys')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_collection_files_tenant_id_tenants')),
    sa.ForeignKeyConstraint(['uploaded_by'], ['users.id'], name=op.f('fk_collection_files_uploaded_by_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_collection_files')),
    sa.UniqueConstraint('tenant_id', 'file_hash', name=op.f('uq_collection_files_tenant_id_file_hash'))
    )
    op.create_table('collection_file_details',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('collection_file_id', sa.Integer(), nullable=False),
    sa.Column('line', sa.Integer(), nullable=False),
    sa.Column('lot', sa.Integer(), nullable=False),
    sa.Column('reference', sa.String(length=48), nullable=False),
    sa.Column('amount', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.Column('expected_amount', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('payment_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("outcome IN ('applied', 'duplicate', 'unknown_reference', 'amount_mismatch', 'expired_coupon', 'already_paid', 'not_payable')", name=op.f('ck_collection_file_details_outcome_known')),
    sa.ForeignKeyConstraint(['collection_file_id'], ['collection_files.id'], name=op.f('fk_collection_file_details_collection_file_id_collection_files')),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_collection_file_details_payment_id_payments')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_collection_file_details_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_collection_file_details'))
    )
    op.create_index('ix_collection_file_details_collection_file_id_line', 'collection_file_details', ['collection_file_id', 'line'], unique=False)
    with op.batch_alter_table('collection_receipts') as batch:
        batch.drop_constraint(RECEIPT_KEY_FK, type_='foreignkey')
        batch.alter_column('bank_api_key_id', existing_type=sa.Integer(), nullable=True)
        batch.create_foreign_key(RECEIPT_KEY_FK, 'bank_api_keys', ['bank_api_key_id'], ['id'])
        batch.add_column(sa.Column('collection_file_id', sa.Integer(), nullable=True))
        batch.create_foreign_key('fk_collection_receipts_collection_file_id_collection_files', 'collection_files', ['collection_file_id'], ['id'])
        batch.create_index('ix_collection_receipts_payment_id', ['payment_id'], unique=False)


def downgrade() -> None:
    """Revert this revision (receipts from files an operator uploaded must go first: they have no bank key)."""
    with op.batch_alter_table('collection_receipts') as batch:
        batch.drop_index('ix_collection_receipts_payment_id')
        batch.drop_constraint('fk_collection_receipts_collection_file_id_collection_files', type_='foreignkey')
        batch.drop_column('collection_file_id')
        batch.drop_constraint(RECEIPT_KEY_FK, type_='foreignkey')
        batch.alter_column('bank_api_key_id', existing_type=sa.Integer(), nullable=False)
        batch.create_foreign_key(RECEIPT_KEY_FK, 'bank_api_keys', ['bank_api_key_id'], ['id'])
    op.drop_index('ix_collection_file_details_collection_file_id_line', table_name='collection_file_details')
    op.drop_table('collection_file_details')
    op.drop_table('collection_files')
