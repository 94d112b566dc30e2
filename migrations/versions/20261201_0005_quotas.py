"""per-tenant quotas: webhook endpoints, templates, contacts (NULL: the platform default)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 22:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

COLUMNS = ("max_webhook_endpoints", "max_templates", "max_contacts")


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        for name in COLUMNS:
            batch.add_column(sa.Column(name, sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        for name in reversed(COLUMNS):
            batch.drop_column(name)
