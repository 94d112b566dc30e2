"""Secrets at rest: AES-256-GCM with a key id in every ciphertext and the row's identity as AAD.

Format: `<key id>:<urlsafe b64(nonce || ciphertext+tag)>`. The AAD is `tenant_id|table|column`,
so a ciphertext copied into another tenant's row, or another column, fails to decrypt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Iterable
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app.core.config import EncryptionKey, get_settings

NONCE_BYTES = 12


class DecryptionError(Exception):
    """Wrong key, unknown key id, tampered ciphertext, or a ciphertext moved to another row."""


def _b64d(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


class SecretBox:
    def __init__(self, keys: Iterable[EncryptionKey]) -> None:
        keys = tuple(keys)
        if not keys:
            raise ValueError("at least one encryption key is required")
        self.primary_key_id = keys[0].key_id
        self._ciphers = {k.key_id: AESGCM(_b64d(k.material.get())) for k in keys}

    @staticmethod
    def aad(tenant_id: object, table: str, column: str) -> bytes:
        return f"{tenant_id}|{table}|{column}".encode()

    def encrypt(self, plaintext: str, aad: bytes) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self.primary_key_id].encrypt(nonce, plaintext.encode(), aad)
        return f"{self.primary_key_id}:{base64.urlsafe_b64encode(nonce + sealed).decode().rstrip('=')}"

    def decrypt(self, token: str, aad: bytes) -> str:
        key_id, sep, body = token.partition(":")
        cipher = self._ciphers.get(key_id)
        if not sep or cipher is None:
            raise DecryptionError(f"no key with id {key_id!r} is configured")
        try:
            raw = _b64d(body)
            return cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], aad).decode()
        except (InvalidTag, ValueError) as exc:
            raise DecryptionError("ciphertext does not verify for this row") from exc

    @staticmethod
    def key_id_of(token: str) -> str:
        return token.partition(":")[0]


@lru_cache(maxsize=4)
def _box_for(keys: tuple[EncryptionKey, ...]) -> SecretBox:
    return SecretBox(keys)


def secret_box() -> SecretBox:
    return _box_for(get_settings().encryption_keys)


def keyed_hash(value: str) -> bytes:
    """HMAC-SHA256 under the server pepper: lookups by secret-ish values without storing them."""
    return hmac.new(get_settings().pepper.get().encode(), value.encode(), hashlib.sha256).digest()
