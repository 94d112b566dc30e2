"""retention: per-tenant retention days, redacted_at on the tables that hold bodies, the indexes the
batched retention job walks (tenant, created_at); sensitive template variables (names on the
template, values sealed on the notification)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

TENANT_COLUMNS = ("body_retention_days", "metadata_retention_days")
# Tables whose bodies are redacted in place: each gets redacted_at, and a partial index of the rows
# still to redact, so a pass reads only the work left (never the rows it redacted before).
REDACTED = ("notifications", "inbound_messages", "raw_events", "webhook_deliveries")
# Tables whose old rows are deleted and that had no (tenant_id, created_at) index yet (notifications has one).
DELETED = ("inbound_messages", "raw_events", "webhook_deliveries")


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        for name in TENANT_COLUMNS:
            batch.add_column(sa.Column(name, sa.Integer(), nullable=True))
    for table in REDACTED:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("redacted_at", sa.DateTime(timezone=True), nullable=True))
        op.create_index(
            f"ix_{table}_unredacted",
            table,
            ["tenant_id", "created_at"],
            postgresql_where=sa.text("redacted_at IS NULL"),
            sqlite_where=sa.text("redacted_at IS NULL"),
        )
    for table in DELETED:
        op.create_index(f"ix_{table}_tenant_created", table, ["tenant_id", "created_at"])
    # Sensitive template variables: their names on the template, their values sealed on the notification.
    with op.batch_alter_table("templates") as batch:
        batch.add_column(
            sa.Column(
                "sensitive_variables",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=False,
                server_default=sa.text("'[]'"),
            )
        )
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("sealed_variables", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("sealed_variables")
    with op.batch_alter_table("templates") as batch:
        batch.drop_column("sensitive_variables")
    for table in reversed(DELETED):
        op.drop_index(f"ix_{table}_tenant_created", table_name=table)
    for table in reversed(REDACTED):
        op.drop_index(f"ix_{table}_unredacted", table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("redacted_at")
    with op.batch_alter_table("tenants") as batch:
        for name in reversed(TENANT_COLUMNS):
            batch.drop_column(name)
