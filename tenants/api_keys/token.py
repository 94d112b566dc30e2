"""The API key format: `ngw_<live|test>_<public id>_<secret>_<checksum>`.

The CRC checksum lets a mistyped or forged key be refused before any database query; the secret
(32 random bytes) is only ever stored as HMAC-SHA256 under the server pepper.
"""

from __future__ import annotations

import hmac
import re
import secrets
import zlib
from dataclasses import dataclass

from app.core.crypto import keyed_hash

_SHAPE = re.compile(r"^ngw_(live|test)_([0-9a-z]{16})_([0-9a-f]{64})_([0-9a-z]{7})$")
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(n: int, width: int) -> str:
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = _ALPHABET[r] + out
    return out.rjust(width, "0")


def _checksum(body: str) -> str:
    return _base36(zlib.crc32(body.encode()), 7)


@dataclass(frozen=True)
class ParsedKey:
    environment: str
    public_id: str
    secret: str

    def matches(self, stored_hash: bytes) -> bool:
        return hmac.compare_digest(keyed_hash(self.secret), stored_hash)


def new_key(environment: str = "live") -> tuple[str, ParsedKey]:
    public_id = "".join(secrets.choice(_ALPHABET) for _ in range(16))
    secret = secrets.token_hex(32)
    body = f"ngw_{environment}_{public_id}_{secret}"
    return f"{body}_{_checksum(body)}", ParsedKey(environment, public_id, secret)


def parse_key(raw: str) -> ParsedKey | None:
    """None for anything that is not a well-formed key with a valid checksum."""
    match = _SHAPE.match(raw)
    if match is None:
        return None
    environment, public_id, secret, checksum = match.groups()
    if not hmac.compare_digest(_checksum(raw.rsplit("_", 1)[0]), checksum):
        return None
    return ParsedKey(environment, public_id, secret)


def display_prefix(parsed: ParsedKey) -> str:
    return f"ngw_{parsed.environment}_{parsed.public_id}"
