"""Foundation: tenants (with the default tenant) and users.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table('tenants',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('name', sa.Unicode(length=200), nullable=False),
    sa.Column('legal_id', sa.String(length=40), nullable=False),
    sa.Column('address', sa.Unicode(length=300), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('locale', sa.String(length=10), nullable=False),
    sa.Column('gln', sa.String(length=13), nullable=False),
    sa.Column('payment_terms_days', sa.Integer(), nullable=False),
    sa.Column('coupon_validity_hours', sa.Integer(), nullable=False),
    sa.Column('channel_fee', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('is_default', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('coupon_validity_hours > 0', name=op.f('ck_tenants_coupon_validity_positive')),
    sa.CheckConstraint('payment_terms_days >= 0', name=op.f('ck_tenants_payment_terms_nonnegative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tenants')),
    sa.UniqueConstraint('code', name=op.f('uq_tenants_code'))
    )
    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('email', sa.Unicode(length=254), nullable=False),
    sa.Column('password_hash', sa.String(length=100), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('full_name', sa.Unicode(length=200), nullable=False),
    sa.Column('locale', sa.String(length=10), nullable=False),
    sa.Column('failed_login_count', sa.Integer(), nullable=False),
    sa.Column('failed_login_window_start', sa.DateTime(timezone=True), nullable=True),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('session_version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('password_changed_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("role IN ('customer', 'operator', 'admin')", name=op.f('ck_users_role_known')),
    sa.CheckConstraint("status IN ('active', 'disabled')", name=op.f('ck_users_status_known')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_users_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('tenant_id', 'email', name=op.f('uq_users_tenant_id_email'))
    )
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_users_tenant_id'), ['tenant_id'], unique=False)

    # A single-tenant install works out of the box; operators edit this row to their company.
    tenants = sa.table(
        "tenants",
        sa.column("id", sa.Integer),
        sa.column("code", sa.String),
        sa.column("name", sa.Unicode),
        sa.column("legal_id", sa.String),
        sa.column("address", sa.Unicode),
        sa.column("country", sa.String),
        sa.column("currency", sa.String),
        sa.column("timezone", sa.String),
        sa.column("locale", sa.String),
        sa.column("gln", sa.String),
        sa.column("payment_terms_days", sa.Integer),
        sa.column("coupon_validity_hours", sa.Integer),
        sa.column("channel_fee", sa.Numeric(18, 2)),
        sa.column("is_default", sa.Boolean),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    # A plain INSERT, not op.bulk_insert: offline on SQL Server bulk_insert wraps the row in
    # SET IDENTITY_INSERT ON without an id, which fails (Msg 545); the identity gives the id.
    op.execute(
        tenants.insert().values(
            {
                "code": "default",
                "name": "Empresa de Servicios Públicos Demo S.A. E.S.P.",
                "legal_id": "900123456-8",
                "address": "Carrera 58 # 42-125, Medellín, Antioquia",
                "country": "CO",
                "currency": "COP",
                "timezone": "America/Bogota",
                "locale": "es",
                "gln": "7709998000018",
                "payment_terms_days": 15,
                "coupon_validity_hours": 72,
                "channel_fee": 0,
                "is_default": True,
                "created_at": datetime(2026, 1, 1, tzinfo=UTC),
            }
        )
    )



def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_users_tenant_id'))

    op.drop_table('users')
    op.drop_table('tenants')
