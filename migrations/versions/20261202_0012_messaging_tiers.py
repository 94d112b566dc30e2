"""messaging-limit tiers: the business-initiated conversations each WhatsApp sender opened, and what a 63018 taught

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-02 07:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0010'
branch_labels = None
depends_on = None


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
    op.create_table('whatsapp_conversations',
    sa.Column('sender', sa.String(length=64), nullable=False),
    sa.Column('contact_id', sa.Uuid(), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    *_owned('whatsapp_conversations'),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'],
                            name=op.f('fk_whatsapp_conversations_contact_id_contacts'), ondelete='CASCADE'),
    sa.UniqueConstraint('tenant_id', 'sender', 'contact_id',
                        name=op.f('uq_whatsapp_conversations_tenant_id_sender_contact_id'))
    )
    op.create_index(op.f('ix_whatsapp_conversations_tenant_id'), 'whatsapp_conversations', ['tenant_id'], unique=False)
    op.create_index('ix_whatsapp_conversations_sender_opened', 'whatsapp_conversations',
                    ['tenant_id', 'sender', 'opened_at'], unique=False)
    op.create_table('whatsapp_sender_limits',
    sa.Column('sender', sa.String(length=64), nullable=False),
    sa.Column('configured_tier', sa.Integer(), nullable=True),
    sa.Column('assumed_tier', sa.Integer(), nullable=False),
    sa.Column('distinct_at_cap', sa.Integer(), nullable=False),
    sa.Column('capped_at', sa.DateTime(timezone=True), nullable=False),
    *_owned('whatsapp_sender_limits'),
    sa.UniqueConstraint('tenant_id', 'sender', name=op.f('uq_whatsapp_sender_limits_tenant_id_sender'))
    )
    op.create_index(op.f('ix_whatsapp_sender_limits_tenant_id'), 'whatsapp_sender_limits', ['tenant_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_whatsapp_sender_limits_tenant_id'), table_name='whatsapp_sender_limits')
    op.drop_table('whatsapp_sender_limits')
    op.drop_index('ix_whatsapp_conversations_sender_opened', table_name='whatsapp_conversations')
    op.drop_index(op.f('ix_whatsapp_conversations_tenant_id'), table_name='whatsapp_conversations')
    op.drop_table('whatsapp_conversations')
