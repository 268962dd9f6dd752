"""Office cash payments: the `cash` payment channel, and the office that received a payment.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNEL_CHECK = 'ck_payments_channel_known'


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_constraint(op.f(CHANNEL_CHECK), type_='check')
        batch_op.create_check_constraint(op.f(CHANNEL_CHECK), "channel IN ('card', 'bank', 'cash')")
        batch_op.add_column(sa.Column('office', sa.Unicode(length=60), nullable=True))


def downgrade() -> None:
    """Revert this revision (cash payments must go first: the old check refuses them)."""
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_column('office')
        batch_op.drop_constraint(op.f(CHANNEL_CHECK), type_='check')
        batch_op.create_check_constraint(op.f(CHANNEL_CHECK), "channel IN ('card', 'bank')")
