"""Bill runs leave the request: a `queued` status, the worker's claim, heartbeat and cursor, one active run per period.

Runs still `running` from before (their process died: nothing else could be running them during an
upgrade) keep only the newest per tenant and period, which a worker then resumes; the older ones are
marked failed, as the old `abandon_stale_runs` did.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE = "status IN ('queued', 'running')"


def upgrade() -> None:
    """Apply this revision."""
    runs = sa.table(
        'billing_runs', sa.column('id', sa.Integer()), sa.column('tenant_id', sa.Integer()),
        sa.column('period', sa.String()), sa.column('status', sa.String()), sa.column('error', sa.Unicode()),
        sa.column('finished_at', sa.DateTime(timezone=True)),
    )
    newest = (
        sa.select(sa.func.max(runs.c.id)).where(runs.c.status == 'running').group_by(runs.c.tenant_id, runs.c.period)
    )
    op.execute(
        runs.update()
        .where(runs.c.status == 'running', runs.c.id.not_in(newest.scalar_subquery()))
        .values(status='failed', finished_at=sa.func.current_timestamp(),
                error='abandoned: still running after its process stopped')
    )
    with op.batch_alter_table('billing_runs') as batch:
        batch.drop_constraint(op.f('ck_billing_runs_status_known'), type_='check')
        batch.add_column(sa.Column('issued_on', sa.Date(), nullable=True))
        batch.add_column(sa.Column('claims', sa.Integer(), server_default='0', nullable=False))
        batch.add_column(sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('contracts_total', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('contracts_done', sa.Integer(), server_default='0', nullable=False))
        batch.add_column(sa.Column('last_contract_id', sa.Integer(), server_default='0', nullable=False))
        batch.create_check_constraint(op.f('ck_billing_runs_status_known'), "status IN ('queued', 'running', 'completed', 'failed')")
        batch.create_index(
            'uq_billing_runs_active_period', ['tenant_id', 'period'], unique=True,
            sqlite_where=sa.text(ACTIVE), postgresql_where=sa.text(ACTIVE), mssql_where=sa.text(ACTIVE),
        )


def downgrade() -> None:
    """Revert this revision (queued runs become failed: the old code cannot run them)."""
    op.execute(
        "UPDATE billing_runs SET status = 'failed', error = 'queued when downgraded' WHERE status = 'queued'"
    )
    with op.batch_alter_table('billing_runs') as batch:
        batch.drop_index('uq_billing_runs_active_period')
        batch.drop_constraint(op.f('ck_billing_runs_status_known'), type_='check')
        batch.drop_column('last_contract_id')
        batch.drop_column('contracts_done')
        batch.drop_column('contracts_total')
        batch.drop_column('heartbeat_at')
        batch.drop_column('claims')
        batch.drop_column('issued_on')
        batch.create_check_constraint(op.f('ck_billing_runs_status_known'), "status IN ('running', 'completed', 'failed')")
