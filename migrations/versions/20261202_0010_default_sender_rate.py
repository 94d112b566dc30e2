"""sender pacing defaults to Twilio's 80 messages/s, not 10

The old default of 10/s came from an out-of-date page (FACTS §6.1, corrected). Policies were stored with
their defaults written out, so a tenant who never chose a rate holds 10 in the database: those are raised
to 80. A rate of exactly 10 cannot be told apart from one a tenant chose; 10 was never a Twilio figure, so
it is taken as the old default. Any other rate is the tenant's and is kept.

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-02 06:10:00
"""

from __future__ import annotations

from alembic import op

revision = '0010'
down_revision = '0008'
branch_labels = None
depends_on = None


def _set_rate(old: float, new: float) -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(f"UPDATE routing_policies SET policy = jsonb_set(policy, '{{whatsapp,sender_rate_per_second}}', '{new}') "
                   f"WHERE (policy #>> '{{whatsapp,sender_rate_per_second}}')::float8 = {old}")
    else:
        op.execute(f"UPDATE routing_policies SET policy = json_set(policy, '$.whatsapp.sender_rate_per_second', {new}) "
                   f"WHERE json_extract(policy, '$.whatsapp.sender_rate_per_second') = {old}")


def upgrade() -> None:
    _set_rate(10.0, 80.0)


def downgrade() -> None:
    _set_rate(80.0, 10.0)
