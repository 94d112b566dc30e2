"""dead letters: bounded tries on every outbox job

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 21:40:00

Every job counts its failed runs and sweeps in `tries`; past the bound it stops in state `dead`
with the class and a scrubbed message of its last error (no personal data). `held` marks work
waiting for its tenant's reactivation, which is not a try.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox') as batch:
        batch.add_column(sa.Column('tries', sa.Integer(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('last_error', sa.String(length=500), nullable=True))
        batch.add_column(sa.Column('dead_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index('ix_outbox_dead', 'outbox', ['dead_at'], unique=False,
                    postgresql_where=sa.text("state = 'dead'"), sqlite_where=sa.text("state = 'dead'"))


def downgrade() -> None:
    op.drop_index('ix_outbox_dead', table_name='outbox')
    with op.batch_alter_table('outbox') as batch:
        batch.drop_column('dead_at')
        batch.drop_column('last_error')
        batch.drop_column('tries')
