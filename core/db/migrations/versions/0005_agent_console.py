"""agent console: agents, sessions, sign-in throttles, audit trail, live activity, presence; tickets get a
channel, an assignee, a priority rank and merges; ticket messages a kind and an author

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

ACTIVE = "status IN ('new', 'open', 'waiting')"  # core.db.models.ACTIVE_SQL, as it was when this was written
revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("teams", sa.String(length=20), nullable=False),
        sa.Column("languages", sa.String(length=20), nullable=False),
        sa.Column("role", sa.String(length=12), nullable=False),
        sa.Column("ui_language", sa.String(length=2), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("password_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("email"),
    )
    op.create_table(
        "agent_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=300), nullable=True),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_agent_sessions_agent_id", "agent_sessions", ["agent_id"])
    op.create_table(
        "login_throttles",
        sa.Column("key", sa.String(length=400), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "activity",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("team", sa.String(length=2), nullable=True),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_activity_at", "activity", ["at"])

    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("channel", sa.String(length=8), nullable=False, server_default="email"))
        batch_op.add_column(sa.Column("priority_rank", sa.SmallInteger(), nullable=False, server_default="2"))
        batch_op.add_column(sa.Column("assignee_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("merged_into_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_tickets_assignee_id_agents", "agents", ["assignee_id"], ["id"],
                                    ondelete="SET NULL")
        batch_op.create_foreign_key("fk_tickets_merged_into_id_tickets", "tickets", ["merged_into_id"], ["id"],
                                    ondelete="SET NULL")
        batch_op.create_index("ix_tickets_assignee_id", ["assignee_id"])
        batch_op.create_index("ix_tickets_worklist", ["team", "status", "priority_rank", "created_at", "id"])
        batch_op.create_index("ix_tickets_active_team", ["team", "priority_rank", "created_at", "id"],
                              sqlite_where=sa.text(ACTIVE), postgresql_where=sa.text(ACTIVE))
        batch_op.create_index("ix_tickets_active", ["priority_rank", "created_at", "id"],
                              sqlite_where=sa.text(ACTIVE), postgresql_where=sa.text(ACTIVE))
        batch_op.create_index("ix_tickets_team_queue_status", ["team", "queue", "status"])
    tickets = sa.table("tickets", sa.column("status", sa.String), sa.column("priority", sa.String),
                       sa.column("priority_rank", sa.SmallInteger))
    # Tickets from before the console: nobody has worked them yet.
    op.execute(tickets.update().where(tickets.c.status.in_(("open", "forwarded"))).values(status="new"))
    for rank, priority in enumerate(("urgent", "high")):
        op.execute(tickets.update().where(tickets.c.priority == priority).values(priority_rank=rank))

    with op.batch_alter_table("ticket_messages", schema=None) as batch_op:
        batch_op.alter_column("direction", existing_type=sa.String(length=3), type_=sa.String(length=8),
                              existing_nullable=False)
        batch_op.add_column(sa.Column("kind", sa.String(length=8), nullable=False, server_default="mail"))
        batch_op.add_column(sa.Column("author_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_ticket_messages_author_id_agents", "agents", ["author_id"], ["id"],
                                    ondelete="SET NULL")

    with op.batch_alter_table("inbound_mail", schema=None) as batch_op:
        batch_op.add_column(sa.Column("team", sa.String(length=2), nullable=True))

    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("team", sa.String(length=2), nullable=True),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_events_agent_id", "audit_events", ["agent_id"])
    op.create_index("ix_audit_events_ticket_id", "audit_events", ["ticket_id"])
    op.create_index("ix_audit_events_team_at", "audit_events", ["team", "at"])
    op.create_table(
        "ticket_presence",
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("ticket_id", "agent_id"),
    )


def downgrade() -> None:
    op.drop_table("ticket_presence")
    op.drop_index("ix_audit_events_team_at", table_name="audit_events")
    op.drop_index("ix_audit_events_ticket_id", table_name="audit_events")
    op.drop_index("ix_audit_events_agent_id", table_name="audit_events")
    op.drop_table("audit_events")
    with op.batch_alter_table("inbound_mail", schema=None) as batch_op:
        batch_op.drop_column("team")
    with op.batch_alter_table("ticket_messages", schema=None) as batch_op:
        batch_op.drop_constraint("fk_ticket_messages_author_id_agents", type_="foreignkey")
        batch_op.drop_column("author_id")
        batch_op.drop_column("kind")
        batch_op.alter_column("direction", existing_type=sa.String(length=8), type_=sa.String(length=3),
                              existing_nullable=False)
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_tickets_team_queue_status")
        batch_op.drop_index("ix_tickets_active")
        batch_op.drop_index("ix_tickets_active_team")
        batch_op.drop_index("ix_tickets_worklist")
        batch_op.drop_index("ix_tickets_assignee_id")
        batch_op.drop_constraint("fk_tickets_merged_into_id_tickets", type_="foreignkey")
        batch_op.drop_constraint("fk_tickets_assignee_id_agents", type_="foreignkey")
        batch_op.drop_column("merged_into_id")
        batch_op.drop_column("assignee_id")
        batch_op.drop_column("priority_rank")
        batch_op.drop_column("channel")
    op.drop_index("ix_activity_at", table_name="activity")
    op.drop_table("activity")
    op.drop_table("login_throttles")
    op.drop_index("ix_agent_sessions_agent_id", table_name="agent_sessions")
    op.drop_table("agent_sessions")
    op.drop_table("agents")
