"""idempotency keys are per environment: a test key never replays a live response; sender rates in range

A routing policy stored with a sender rate below the new minimum (0.1/s) would no longer load: it
is raised to that minimum.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 21:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Batch mode: SQLite (the embedded dev database) cannot alter constraints in place.
    with op.batch_alter_table('idempotency_keys') as batch:
        batch.add_column(sa.Column('environment', sa.String(length=4), nullable=False, server_default='live'))
        batch.drop_constraint('uq_idempotency_keys_tenant_id_key', type_='unique')
        batch.create_unique_constraint('uq_idempotency_keys_tenant_id_environment_key',
                                       ['tenant_id', 'environment', 'key'])
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("UPDATE routing_policies SET policy = jsonb_set(policy, '{whatsapp,sender_rate_per_second}', '0.1') "
                   "WHERE (policy #>> '{whatsapp,sender_rate_per_second}')::float8 < 0.1")
    else:
        op.execute("UPDATE routing_policies SET policy = json_set(policy, '$.whatsapp.sender_rate_per_second', 0.1) "
                   "WHERE json_extract(policy, '$.whatsapp.sender_rate_per_second') < 0.1")


def downgrade() -> None:
    # A test key's record may share its key with a live one: those go, as the old constraint cannot hold both.
    op.execute("DELETE FROM idempotency_keys WHERE environment <> 'live'")
    with op.batch_alter_table('idempotency_keys') as batch:
        batch.drop_constraint('uq_idempotency_keys_tenant_id_environment_key', type_='unique')
        batch.create_unique_constraint('uq_idempotency_keys_tenant_id_key', ['tenant_id', 'key'])
        batch.drop_column('environment')
