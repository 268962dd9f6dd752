"""Suspension and reconnection (issue 17 §2): the tenant's thresholds, fee and deadlines; the service orders.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = "status = 'pending'"
TENANT_CHECKS = (
    ("suspension_after_days_positive", "suspension_after_days > 0"),
    ("suspension_min_amount_nonnegative", "suspension_min_amount >= 0"),
    ("suspension_notice_days_nonnegative", "suspension_notice_days >= 0"),
    ("reconnection_fee_nonnegative", "reconnection_fee >= 0"),
    ("reconnection_deadline_positive", "reconnection_deadline_hours > 0"),
)


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table('tenants') as batch:
        batch.add_column(sa.Column('suspension_after_days', sa.Integer(), server_default='60', nullable=False))
        batch.add_column(sa.Column('suspension_min_amount', sa.Numeric(precision=18, scale=2), server_default='0', nullable=False))
        batch.add_column(sa.Column('suspension_notice_days', sa.Integer(), server_default='5', nullable=False))
        batch.add_column(sa.Column('reconnection_fee', sa.Numeric(precision=18, scale=2), server_default='0', nullable=False))
        batch.add_column(sa.Column('reconnection_deadline_hours', sa.Integer(), server_default='24', nullable=False))
        for name, condition in TENANT_CHECKS:
            batch.create_check_constraint(op.f(f'ck_tenants_{name}'), condition)
    op.create_table('service_orders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('contract_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Unicode(length=300), nullable=False),
    sa.Column('amount', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('executed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reading', sa.Numeric(precision=18, scale=3), nullable=True),
    sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_by', sa.Integer(), nullable=True),
    sa.Column('note', sa.Unicode(length=500), nullable=True),
    sa.CheckConstraint("kind IN ('suspension', 'reconnection')", name=op.f('ck_service_orders_kind_known')),
    sa.CheckConstraint("status IN ('pending', 'executed', 'cancelled')", name=op.f('ck_service_orders_status_known')),
    sa.CheckConstraint('reading IS NULL OR reading >= 0', name=op.f('ck_service_orders_reading_nonnegative')),
    sa.ForeignKeyConstraint(['closed_by'], ['users.id'], name=op.f('fk_service_orders_closed_by_users')),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], name=op.f('fk_service_orders_contract_id_contracts')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_service_orders_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_orders'))
    )
    op.create_index('ix_service_orders_tenant_id_status_kind', 'service_orders', ['tenant_id', 'status', 'kind'], unique=False)
    op.create_index(
        'uq_service_orders_pending_contract_kind', 'service_orders', ['contract_id', 'kind'], unique=True,
        sqlite_where=sa.text(PENDING), postgresql_where=sa.text(PENDING), mssql_where=sa.text(PENDING),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index('uq_service_orders_pending_contract_kind', table_name='service_orders')
    op.drop_index('ix_service_orders_tenant_id_status_kind', table_name='service_orders')
    op.drop_table('service_orders')
    with op.batch_alter_table('tenants') as batch:
        for name, _ in reversed(TENANT_CHECKS):
            batch.drop_constraint(op.f(f'ck_tenants_{name}'), type_='check')
        batch.drop_column('reconnection_deadline_hours')
        batch.drop_column('reconnection_fee')
        batch.drop_column('suspension_notice_days')
        batch.drop_column('suspension_min_amount')
        batch.drop_column('suspension_after_days')
