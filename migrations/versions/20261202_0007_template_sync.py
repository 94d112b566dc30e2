"""templates synced from the tenant's Twilio Content API: the content list, its sync state, each template's approvals

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def _owned(table: str) -> list[sa.SchemaItem]:
    return [
        sa.Column('tenant_id', sa.Uuid(), nullable=False),
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f(f'fk_{table}_tenant_id_tenants'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f(f'pk_{table}')),
    ]


def upgrade() -> None:
    op.create_table('twilio_contents',
    sa.Column('content_sid', sa.String(length=34), nullable=False),
    sa.Column('account_sid', sa.String(length=34), nullable=False),
    sa.Column('friendly_name', sa.String(length=256), nullable=True),
    sa.Column('language', sa.String(length=35), nullable=True),
    sa.Column('category', sa.String(length=32), nullable=True),
    sa.Column('approval_status', sa.String(length=16), nullable=False),
    sa.Column('twilio_status', sa.String(length=64), nullable=True),
    sa.Column('rejection_reason', sa.Text(), nullable=True),
    sa.Column('variables', JSON, nullable=False),
    sa.Column('types', JSON, nullable=False),
    sa.Column('synced_at', sa.DateTime(timezone=True), nullable=False),
    *_owned('twilio_contents'),
    sa.UniqueConstraint('tenant_id', 'content_sid', name=op.f('uq_twilio_contents_tenant_id_content_sid'))
    )
    op.create_index(op.f('ix_twilio_contents_tenant_id'), 'twilio_contents', ['tenant_id'], unique=False)
    op.create_table('twilio_content_syncs',
    sa.Column('account_sid', sa.String(length=34), nullable=True),
    sa.Column('synced_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('items', sa.Integer(), nullable=False),
    sa.Column('error', sa.String(length=300), nullable=True),
    *_owned('twilio_content_syncs'),
    sa.UniqueConstraint('tenant_id', name=op.f('uq_twilio_content_syncs_tenant_id'))
    )
    op.create_index(op.f('ix_twilio_content_syncs_tenant_id'), 'twilio_content_syncs', ['tenant_id'], unique=False)
    op.create_index(op.f('ix_twilio_content_syncs_due_at'), 'twilio_content_syncs', ['due_at'], unique=False)
    # Existing templates were never checked: an empty map (each ContentSid "unverified") until the first sync,
    # which the periodic pass runs for every tenant with Twilio credentials and no sync yet.
    with op.batch_alter_table('templates') as batch:
        batch.add_column(sa.Column('approvals', JSON, nullable=False, server_default=sa.text("'{}'")))


def downgrade() -> None:
    with op.batch_alter_table('templates') as batch:
        batch.drop_column('approvals')
    op.drop_index(op.f('ix_twilio_content_syncs_due_at'), table_name='twilio_content_syncs')
    op.drop_index(op.f('ix_twilio_content_syncs_tenant_id'), table_name='twilio_content_syncs')
    op.drop_table('twilio_content_syncs')
    op.drop_index(op.f('ix_twilio_contents_tenant_id'), table_name='twilio_contents')
    op.drop_table('twilio_contents')
