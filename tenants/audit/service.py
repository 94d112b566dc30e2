"""Audit records are written in the same transaction as the change they describe."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.logging import request_id_var
from tenants.audit.models import AuditEntry


def record(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    actor: Any,
    action: str,
    target_type: str,
    target_id: object | None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEntry:
    """`actor` is a tenants.auth.Principal (or anything with actor_type/actor_id); before/after must be masked."""
    entry = AuditEntry(
        tenant_id=tenant_id,
        actor_type=actor.actor_type,
        actor_id=actor.actor_id,
        action=action,
        target_type=target_type,
        target_id=str(target_id) if target_id is not None else None,
        before=before,
        after=after,
        request_id=request_id_var.get(),
    )
    session.add(entry)
    return entry


class SystemActor:
    """For changes the gateway makes on its own (a STOP keyword, a disabled endpoint)."""

    actor_type = "system"

    def __init__(self, reason: str) -> None:
        self.actor_id = reason


def mask(secret: str | None) -> str | None:
    """Show only the last four characters: enough to tell two secrets apart, never to use one."""
    if not secret:
        return None
    return "…" + secret[-4:] if len(secret) > 8 else "…"
