"""Contacts as notifications see them: an inbound message that merges two contacts moves their messages too.

tenants/ imports nothing of app/ but its kernel (the layer rule in pyproject.toml), so it does not
know the notify and webhook tables that refer to a contact. They are named here, and tenants'
contact service is called with them. Erasure composes the same two halves, in app/erasure.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.notify.models import Notification, WhatsAppConversation
from app.webhooks.models import InboundMessage
from tenants.contacts import service as contacts
from tenants.contacts.identifiers import Identifier
from tenants.contacts.models import Contact

# Tables outside tenants/ whose rows belong to a contact (tenant_id, contact_id). A test checks that
# this and tenants' own contacts.OWNED cover every foreign key to a contact.
CONTACT_OWNED = (Notification, InboundMessage, WhatsAppConversation)


async def link_inbound(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    phone: Identifier | None,
    bsuid: Identifier | None,
    profile_name: str | None = None,
    at: datetime | None = None,
) -> Contact | None:
    """Create or merge the contact behind an inbound WhatsApp message; None when it names nobody."""
    return await contacts.link_inbound(
        session, tenant_id, phone=phone, bsuid=bsuid, profile_name=profile_name, at=at, also_owned=CONTACT_OWNED
    )
