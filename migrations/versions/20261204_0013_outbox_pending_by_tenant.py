"""outbox: pending work by kind and tenant, for the webhook drain's tenant-fair batch claim

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 01:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        'ix_outbox_pending_by_tenant',
        'outbox',
        ['kind', 'tenant_id', 'available_at'],
        postgresql_where=sa.text("state = 'pending'"),
        sqlite_where=sa.text("state = 'pending'"),
    )


def downgrade() -> None:
    op.drop_index('ix_outbox_pending_by_tenant', table_name='outbox')
