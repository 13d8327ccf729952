"""outbox leases: who is sending a row and until when, how many claims lapsed mid-send

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("doubts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_outbox_due", ["status", "next_attempt_at"], unique=False)
    # Rows an older version left "sending" were claimed by a sender that is gone: sent or not, nobody knows.
    # They go back to pending, counted as in doubt, and are sent again with their own Message-ID.
    outbox = sa.table("outbox", sa.column("status", sa.String), sa.column("doubts", sa.Integer),
                      sa.column("last_error", sa.Text))
    op.execute(
        outbox.update().where(outbox.c.status == "sending").values(
            status="pending", doubts=outbox.c.doubts + 1,
            last_error="in doubt: left 'sending' by an older version that stopped mid-send; sent again")
    )


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_due")
        batch_op.drop_column("lease_until")
        batch_op.drop_column("claimed_by")
        batch_op.drop_column("doubts")
