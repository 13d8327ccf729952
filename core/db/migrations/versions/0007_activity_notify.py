"""live activity: on PostgreSQL the table itself announces each commit that added events (a trigger sends NOTIFY
on the feed's channel), so that a writer needs no statement of its own for it and none can forget it

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

CHANNEL = "billing_activity"  # core.activity.CHANNEL when this revision was written (a migration stays as it was)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # (SQLite has no NOTIFY: its readers look, and the console's hub is rung by its own commits)
    # Fixed DDL: no value comes from outside. NOTIFY is sent at commit, once per transaction and channel.
    op.execute(f"""
        CREATE FUNCTION billing_activity_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', '');
            RETURN NULL;
        END $$""")
    op.execute("""
        CREATE TRIGGER activity_notify AFTER INSERT ON activity
        FOR EACH STATEMENT EXECUTE FUNCTION billing_activity_notify()""")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS activity_notify ON activity")
    op.execute("DROP FUNCTION IF EXISTS billing_activity_notify()")
