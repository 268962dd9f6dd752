"""Credit and debit notes: the invoice_notes table, and credit balances a credit note on a paid invoice gives.

A credit balance now comes from a payment or from a credit note: `payment_id` becomes nullable,
`note_id` is added, and the (payment_id, invoice_id) unique becomes a filtered unique index (SQL
Server's unique constraints would count two NULL payment ids as equal). `credit_note` joins the reasons.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PAYMENT_CREDIT = 'payment_id IS NOT NULL'
NOTE_CREDIT = 'note_id IS NOT NULL'
OLD_REASONS = "reason IN ('invoice_void', 'invoice_paid', 'invoice_carried')"
NEW_REASONS = "reason IN ('invoice_void', 'invoice_paid', 'invoice_carried', 'credit_note')"


def upgrade() -> None:
    """Apply this revision."""
    op.create_table('invoice_notes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('number', sa.String(length=30), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('contract_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('amount', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('reason', sa.Unicode(length=500), nullable=False),
    sa.Column('pqr_id', sa.Integer(), nullable=True),
    sa.Column('amount_due_before', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('amount_due_after', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('issued_on', sa.Date(), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('credit', 'debit')", name=op.f('ck_invoice_notes_kind_known')),
    sa.CheckConstraint('amount > 0', name=op.f('ck_invoice_notes_amount_positive')),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], name=op.f('fk_invoice_notes_contract_id_contracts')),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_invoice_notes_created_by_users')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_invoice_notes_customer_id_customers')),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_invoice_notes_invoice_id_invoices')),
    sa.ForeignKeyConstraint(['pqr_id'], ['pqrs.id'], name=op.f('fk_invoice_notes_pqr_id_pqrs')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_invoice_notes_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invoice_notes')),
    sa.UniqueConstraint('tenant_id', 'number', name=op.f('uq_invoice_notes_tenant_id_number'))
    )
    with op.batch_alter_table('invoice_notes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_invoice_notes_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index('ix_invoice_notes_invoice_id_created_at', ['invoice_id', 'created_at'], unique=False)

    with op.batch_alter_table('credit_balances', schema=None) as batch_op:
        batch_op.drop_constraint('uq_credit_balances_payment_id_invoice_id', type_='unique')
        batch_op.drop_constraint('reason_known', type_='check')
        batch_op.alter_column('payment_id', existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column('note_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_credit_balances_note_id_invoice_notes'), 'invoice_notes', ['note_id'], ['id'])
        batch_op.create_check_constraint('reason_known', NEW_REASONS)
        batch_op.create_check_constraint('has_source', 'payment_id IS NOT NULL OR note_id IS NOT NULL')
    with op.batch_alter_table('credit_balances', schema=None) as batch_op:
        for name, columns, where in (
            ('uq_credit_balances_payment_id_invoice_id', ['payment_id', 'invoice_id'], PAYMENT_CREDIT),
            ('uq_credit_balances_note_id', ['note_id'], NOTE_CREDIT),
        ):
            batch_op.create_index(
                name, columns, unique=True,
                sqlite_where=sa.text(where), postgresql_where=sa.text(where), mssql_where=sa.text(where),
            )


def downgrade() -> None:
    """Revert this revision (credit balances from credit notes go with their notes)."""
    op.execute(sa.text('DELETE FROM credit_balances WHERE payment_id IS NULL'))
    with op.batch_alter_table('credit_balances', schema=None) as batch_op:
        batch_op.drop_index('uq_credit_balances_note_id')
        batch_op.drop_index('uq_credit_balances_payment_id_invoice_id')
    with op.batch_alter_table('credit_balances', schema=None) as batch_op:
        batch_op.drop_constraint('has_source', type_='check')
        batch_op.drop_constraint('reason_known', type_='check')
        batch_op.drop_constraint(batch_op.f('fk_credit_balances_note_id_invoice_notes'), type_='foreignkey')
        batch_op.drop_column('note_id')
        batch_op.alter_column('payment_id', existing_type=sa.Integer(), nullable=False)
        batch_op.create_check_constraint('reason_known', OLD_REASONS)
        batch_op.create_unique_constraint(batch_op.f('uq_credit_balances_payment_id_invoice_id'), ['payment_id', 'invoice_id'])
    with op.batch_alter_table('invoice_notes', schema=None) as batch_op:
        batch_op.drop_index('ix_invoice_notes_invoice_id_created_at')
        batch_op.drop_index(batch_op.f('ix_invoice_notes_customer_id'))
    op.drop_table('invoice_notes')
