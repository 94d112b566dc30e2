from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.crypto import keyed_hash
from app.core.db import utcnow
from tenants.api_keys.models import ApiKey
from tenants.api_keys.repository import ApiKeyRepository
from tenants.api_keys.schemas import ApiKeyCreated, ApiKeyOut
from tenants.api_keys.token import display_prefix, new_key
from tenants.audit import service as audit
from tenants.auth import key_cache, refuse_test_key


def _prefix(key: ApiKey) -> str:
    return f"ngw_{key.environment}_{key.public_id}"


def snapshot(key: ApiKey) -> dict[str, Any]:
    return {
        "name": key.name,
        "prefix": _prefix(key),
        "scopes": list(key.scopes),
        "environment": key.environment,
        "revoked": key.revoked_at is not None,
    }


def render(key: ApiKey) -> ApiKeyOut:
    return ApiKeyOut(
        id=key.id,
        prefix=_prefix(key),
        name=key.name,
        scopes=list(key.scopes),
        environment=key.environment,
        created_at=key.created_at,
        last_used_at=key.last_used_at,
        revoked_at=key.revoked_at,
    )


async def create_key(
    session: AsyncSession, tenant_id: uuid.UUID, *, name: str, scopes: list[str], environment: str, actor: Any
) -> ApiKeyCreated:
    if environment == "live":  # a test admin key must not mint its way into live traffic
        refuse_test_key(actor)
    full, parsed = new_key(environment)
    key = ApiKeyRepository(session, tenant_id).add(
        ApiKey(
            name=name,
            environment=environment,
            public_id=parsed.public_id,
            secret_hash=keyed_hash(parsed.secret),
            scopes=sorted(set(scopes)),
        )
    )
    await session.flush()
    audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="api_key.created",
        target_type="api_key",
        target_id=key.id,
        after=snapshot(key),
    )
    return ApiKeyCreated(
        id=key.id,
        key=full,
        prefix=display_prefix(parsed),
        name=key.name,
        scopes=list(key.scopes),
        environment=key.environment,
        created_at=key.created_at,
    )


async def revoke_key(session: AsyncSession, tenant_id: uuid.UUID, key_id: uuid.UUID, *, actor: Any) -> None:
    key = await ApiKeyRepository(session, tenant_id).get(key_id, what="API key")
    if key.environment == "live":
        refuse_test_key(actor)
    if key.revoked_at is None:
        before = snapshot(key)
        key.revoked_at = utcnow()
        audit.record(
            session,
            tenant_id=tenant_id,
            actor=actor,
            action="api_key.revoked",
            target_type="api_key",
            target_id=key.id,
            before=before,
            after=snapshot(key),
        )
    key_cache.invalidate_on_commit(session, public_id=key.public_id)
