"""One-off charges and credits on contracts, billed once by the next bill; a meter's kind.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table('contract_charges',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('contract_id', sa.Integer(), nullable=False),
    sa.Column('description', sa.Unicode(length=200), nullable=False),
    sa.Column('amount', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('taxable', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=True),
    sa.Column('billed_amount', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('carried_from_id', sa.Integer(), nullable=True),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('billed_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'billed')", name=op.f('ck_contract_charges_status_known')),
    sa.CheckConstraint("amount <> 0", name=op.f('ck_contract_charges_amount_nonzero')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_contract_charges_tenant_id_tenants')),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], name=op.f('fk_contract_charges_contract_id_contracts')),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_contract_charges_invoice_id_invoices')),
    sa.ForeignKeyConstraint(['carried_from_id'], ['contract_charges.id'], name=op.f('fk_contract_charges_carried_from_id_contract_charges')),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_contract_charges_created_by_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contract_charges'))
    )
    op.create_index('ix_contract_charges_contract_id_status', 'contract_charges', ['contract_id', 'status'], unique=False)
    op.create_index('ix_contract_charges_invoice_id', 'contract_charges', ['invoice_id'], unique=False)
    with op.batch_alter_table('meters') as batch:
        batch.add_column(sa.Column('kind', sa.String(length=16), server_default='standard', nullable=False))
        batch.create_check_constraint(op.f('ck_meters_kind_known'), "kind IN ('standard', 'smart', 'prepaid')")


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table('meters') as batch:
        batch.drop_constraint(op.f('ck_meters_kind_known'), type_='check')
        batch.drop_column('kind')
    op.drop_index('ix_contract_charges_invoice_id', table_name='contract_charges')
    op.drop_index('ix_contract_charges_contract_id_status', table_name='contract_charges')
    op.drop_table('contract_charges')
