"""Encrypt and decrypt a tenant-owned secret column, bound to (tenant, table, column)."""

from __future__ import annotations

import uuid

from app.core.crypto import SecretBox, secret_box


def seal(tenant_id: uuid.UUID, table: str, column: str, plaintext: str, box: SecretBox | None = None) -> str:
    return (box or secret_box()).encrypt(plaintext, SecretBox.aad(tenant_id, table, column))


def unseal(tenant_id: uuid.UUID, table: str, column: str, token: str, box: SecretBox | None = None) -> str:
    return (box or secret_box()).decrypt(token, SecretBox.aad(tenant_id, table, column))
