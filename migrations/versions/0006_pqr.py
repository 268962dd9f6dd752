"""PQR: petitions, complaints and claims, with tenant holidays.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table('tenant_holidays',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('name', sa.Unicode(length=100), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_tenant_holidays_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tenant_holidays')),
    sa.UniqueConstraint('tenant_id', 'day', name=op.f('uq_tenant_holidays_tenant_id_day'))
    )
    op.create_table('pqrs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('filing_number', sa.String(length=30), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('contract_id', sa.Integer(), nullable=True),
    sa.Column('invoice_id', sa.Integer(), nullable=True),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('subject', sa.Unicode(length=200), nullable=False),
    sa.Column('description', sa.UnicodeText(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('filed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('answer', sa.UnicodeText(), nullable=True),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('answered_by', sa.Integer(), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('filed', 'in_progress') OR answer IS NOT NULL", name=op.f('ck_pqrs_answered_has_answer')),
    sa.CheckConstraint("status IN ('filed', 'in_progress', 'answered', 'closed')", name=op.f('ck_pqrs_status_known')),
    sa.CheckConstraint("type IN ('petition', 'complaint', 'claim', 'appeal')", name=op.f('ck_pqrs_type_known')),
    sa.ForeignKeyConstraint(['answered_by'], ['users.id'], name=op.f('fk_pqrs_answered_by_users')),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], name=op.f('fk_pqrs_contract_id_contracts')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_pqrs_customer_id_customers')),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_pqrs_invoice_id_invoices')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_pqrs_tenant_id_tenants')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_pqrs_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pqrs')),
    sa.UniqueConstraint('tenant_id', 'filing_number', name=op.f('uq_pqrs_tenant_id_filing_number'))
    )
    with op.batch_alter_table('pqrs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pqrs_contract_id'), ['contract_id'], unique=False)
        batch_op.create_index('ix_pqrs_customer_id_filed_at', ['customer_id', 'filed_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_pqrs_invoice_id'), ['invoice_id'], unique=False)
        batch_op.create_index('ix_pqrs_tenant_id_status_due_on', ['tenant_id', 'status', 'due_on'], unique=False)



def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table('pqrs', schema=None) as batch_op:
        batch_op.drop_index('ix_pqrs_tenant_id_status_due_on')
        batch_op.drop_index(batch_op.f('ix_pqrs_invoice_id'))
        batch_op.drop_index('ix_pqrs_customer_id_filed_at')
        batch_op.drop_index(batch_op.f('ix_pqrs_contract_id'))

    op.drop_table('pqrs')
    op.drop_table('tenant_holidays')
