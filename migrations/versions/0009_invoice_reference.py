"""Invoices get their own payment reference, printed with the invoice's bank barcode.

Existing invoices get theirs from their number (online upgrades only: an offline T-SQL script leaves
them NULL, and their PDFs print without a barcode until a backfill runs).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table('invoices') as batch:
        batch.add_column(sa.Column('payment_reference', sa.String(length=25), nullable=True))
        batch.create_index('ix_invoices_tenant_id_payment_reference', ['tenant_id', 'payment_reference'], unique=False)
    _backfill()


def _reference(number: str) -> str:
    # A frozen copy of domain.coupon_codes.invoice_reference: migrations must not change when the app does.
    body = "".join(c for c in number if c.isascii() and c.isdigit()).zfill(13)
    total = 0
    for i, char in enumerate(reversed(body)):
        value = int(char) * (2 if i % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return body + str((10 - total % 10) % 10)


def _backfill() -> None:
    if op.get_context().as_sql:
        return
    invoices = sa.table('invoices', sa.column('id', sa.Integer()), sa.column('number', sa.String()),
                        sa.column('payment_reference', sa.String()))
    bind = op.get_bind()
    last_id = 0
    while True:
        rows = bind.execute(
            sa.select(invoices.c.id, invoices.c.number)
            .where(invoices.c.id > last_id, invoices.c.payment_reference.is_(None))
            .order_by(invoices.c.id)
            .limit(1000)
        ).all()
        if not rows:
            return
        update = (
            sa.update(invoices)
            .where(invoices.c.id == sa.bindparam('row_id'))
            .values(payment_reference=sa.bindparam('reference'))
        )
        usable = [r for r in rows if 0 < sum(c.isdigit() for c in r.number) <= 13]
        if usable:
            bind.execute(update, [{'row_id': r.id, 'reference': _reference(r.number)} for r in usable])
        last_id = rows[-1].id


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table('invoices') as batch:
        batch.drop_index('ix_invoices_tenant_id_payment_reference')
        batch.drop_column('payment_reference')
