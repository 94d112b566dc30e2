"""usage and provider errors: attempts keep Twilio's more_info and request id, and what usage counts
them under (category, recipient country); indexes for GET /v1/usage and GET /v1/messages

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

COLUMNS = (
    ("error_more_info", sa.String(512)),
    ("provider_request_id", sa.String(64)),
    ("usage_category", sa.String(24)),
    ("recipient_country", sa.String(3)),
)


def upgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        for name, type_ in COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))
    op.create_index("ix_attempts_tenant_sending", "attempts", ["tenant_id", "sending_started_at"])
    op.create_index(
        "ix_inbound_messages_tenant_received", "inbound_messages", ["tenant_id", "received_at", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_inbound_messages_tenant_received", table_name="inbound_messages")
    op.drop_index("ix_attempts_tenant_sending", table_name="attempts")
    with op.batch_alter_table("attempts") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
