"""Accounts: customers, contracts, meters, readings and corrections; users link to customers; tenant sequences.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table('customers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.Unicode(length=200), nullable=False),
    sa.Column('national_id_type', sa.String(length=8), nullable=False),
    sa.Column('national_id', sa.String(length=20), nullable=False),
    sa.Column('national_id_display', sa.String(length=30), nullable=False),
    sa.Column('email', sa.Unicode(length=254), nullable=True),
    sa.Column('phone', sa.String(length=30), nullable=True),
    sa.Column('billing_address', sa.Unicode(length=300), nullable=False),
    sa.Column('locale', sa.String(length=10), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("national_id_type IN ('rut', 'nit', 'cc', 'cpf', 'cnpj')", name=op.f('ck_customers_national_id_type_known')),
    sa.CheckConstraint("status IN ('active', 'inactive')", name=op.f('ck_customers_status_known')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_customers_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customers')),
    sa.UniqueConstraint('tenant_id', 'national_id_type', 'national_id', name=op.f('uq_customers_tenant_id_national_id_type_national_id'))
    )
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.create_index('ix_customers_tenant_id_name', ['tenant_id', 'name'], unique=False)

    op.create_table('tenant_sequences',
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('last_value', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_tenant_sequences_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('tenant_id', 'name', name=op.f('pk_tenant_sequences'))
    )
    op.create_table('contracts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('contract_number', sa.String(length=30), nullable=False),
    sa.Column('service', sa.String(length=16), nullable=False),
    sa.Column('supply_address', sa.Unicode(length=300), nullable=False),
    sa.Column('stratum', sa.String(length=16), nullable=False),
    sa.Column('tariff_class', sa.String(length=30), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("service IN ('electricity', 'water', 'gas')", name=op.f('ck_contracts_service_known')),
    sa.CheckConstraint("status IN ('active', 'suspended', 'terminated')", name=op.f('ck_contracts_status_known')),
    sa.CheckConstraint("stratum IN ('1', '2', '3', '4', '5', '6', 'commercial', 'industrial', 'official')", name=op.f('ck_contracts_stratum_known')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_contracts_customer_id_customers')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_contracts_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contracts')),
    sa.UniqueConstraint('tenant_id', 'contract_number', name=op.f('uq_contracts_tenant_id_contract_number'))
    )
    with op.batch_alter_table('contracts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contracts_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index('ix_contracts_tenant_id_status', ['tenant_id', 'status'], unique=False)

    op.create_table('meters',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('contract_id', sa.Integer(), nullable=False),
    sa.Column('serial', sa.String(length=40), nullable=False),
    sa.Column('register_digits', sa.Integer(), nullable=False),
    sa.Column('multiplier', sa.Numeric(precision=10, scale=3), nullable=False),
    sa.Column('initial_value', sa.Numeric(precision=18, scale=3), nullable=False),
    sa.Column('installed_on', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('latitude', sa.Numeric(precision=9, scale=6), nullable=True),
    sa.Column('longitude', sa.Numeric(precision=9, scale=6), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('active', 'retired')", name=op.f('ck_meters_status_known')),
    sa.CheckConstraint('initial_value >= 0', name=op.f('ck_meters_initial_value_nonnegative')),
    sa.CheckConstraint('multiplier > 0', name=op.f('ck_meters_multiplier_positive')),
    sa.CheckConstraint('register_digits BETWEEN 1 AND 12', name=op.f('ck_meters_register_digits_range')),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], name=op.f('fk_meters_contract_id_contracts')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_meters_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_meters')),
    sa.UniqueConstraint('tenant_id', 'serial', name=op.f('uq_meters_tenant_id_serial'))
    )
    with op.batch_alter_table('meters', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_meters_contract_id'), ['contract_id'], unique=False)

    op.create_table('readings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('meter_id', sa.Integer(), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('value', sa.Numeric(precision=18, scale=3), nullable=False),
    sa.Column('read_on', sa.Date(), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('consumption', sa.Numeric(precision=18, scale=3), nullable=False),
    sa.Column('flags', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('actual', 'estimated', 'corrected')", name=op.f('ck_readings_kind_known')),
    sa.CheckConstraint('value >= 0', name=op.f('ck_readings_value_nonnegative')),
    sa.ForeignKeyConstraint(['meter_id'], ['meters.id'], name=op.f('fk_readings_meter_id_meters')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_readings_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_readings')),
    sa.UniqueConstraint('meter_id', 'period', name=op.f('uq_readings_meter_id_period'))
    )
    with op.batch_alter_table('readings', schema=None) as batch_op:
        batch_op.create_index('ix_readings_tenant_id_period', ['tenant_id', 'period'], unique=False)

    op.create_table('reading_corrections',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('reading_id', sa.Integer(), nullable=False),
    sa.Column('previous_value', sa.Numeric(precision=18, scale=3), nullable=False),
    sa.Column('previous_kind', sa.String(length=16), nullable=False),
    sa.Column('previous_consumption', sa.Numeric(precision=18, scale=3), nullable=False),
    sa.Column('previous_flags', sa.String(length=64), nullable=False),
    sa.Column('new_value', sa.Numeric(precision=18, scale=3), nullable=False),
    sa.Column('reason', sa.Unicode(length=500), nullable=False),
    sa.Column('corrected_by', sa.Integer(), nullable=True),
    sa.Column('corrected_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['corrected_by'], ['users.id'], name=op.f('fk_reading_corrections_corrected_by_users')),
    sa.ForeignKeyConstraint(['reading_id'], ['readings.id'], name=op.f('fk_reading_corrections_reading_id_readings')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_reading_corrections_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reading_corrections'))
    )
    with op.batch_alter_table('reading_corrections', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reading_corrections_reading_id'), ['reading_id'], unique=False)

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('customer_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_users_customer_id'), ['customer_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_users_customer_id_customers'), 'customers', ['customer_id'], ['id'])
        # One login per customer record; filtered because SQL Server's unique index allows a single NULL.
        batch_op.create_index(
            'uq_users_customer_id', ['customer_id'], unique=True,
            sqlite_where=sa.text('customer_id IS NOT NULL'),
            postgresql_where=sa.text('customer_id IS NOT NULL'),
            mssql_where=sa.text('customer_id IS NOT NULL'),
        )



def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_index('uq_users_customer_id')
        batch_op.drop_constraint(batch_op.f('fk_users_customer_id_customers'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_users_customer_id'))
        batch_op.drop_column('customer_id')

    with op.batch_alter_table('reading_corrections', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reading_corrections_reading_id'))

    op.drop_table('reading_corrections')
    with op.batch_alter_table('readings', schema=None) as batch_op:
        batch_op.drop_index('ix_readings_tenant_id_period')

    op.drop_table('readings')
    with op.batch_alter_table('meters', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_meters_contract_id'))

    op.drop_table('meters')
    with op.batch_alter_table('contracts', schema=None) as batch_op:
        batch_op.drop_index('ix_contracts_tenant_id_status')
        batch_op.drop_index(batch_op.f('ix_contracts_customer_id'))

    op.drop_table('contracts')
    op.drop_table('tenant_sequences')
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_index('ix_customers_tenant_id_name')

    op.drop_table('customers')
