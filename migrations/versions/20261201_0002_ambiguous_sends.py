"""attempts.checks: how many times an ambiguous WhatsApp send was looked for at Twilio

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 21:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A server default fills existing rows; batch mode rebuilds the table on SQLite.
    with op.batch_alter_table('attempts') as batch:
        batch.add_column(sa.Column('checks', sa.Integer(), nullable=False, server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('attempts') as batch:
        batch.drop_column('checks')
