"""Short-TTL, in-process cache of decrypted Twilio credentials by AccountSid (the webhook path).

A credential change invalidates this process's entry at once; other processes see it within TTL.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from channels.base import TwilioCredentials

TTL_SECONDS = 5.0


@dataclass(frozen=True)
class CachedTwilio:
    tenant_id: uuid.UUID
    creds: TwilioCredentials
    loaded_at: float


_entries: dict[str, CachedTwilio | None] = {}
_loaded: dict[str, float] = {}


def get(account_sid: str) -> tuple[bool, CachedTwilio | None]:
    """(hit, entry): a hit may be a cached miss (None) so unknown SIDs don't hammer the database."""
    loaded = _loaded.get(account_sid)
    if loaded is None or time.monotonic() - loaded > TTL_SECONDS:
        return False, None
    return True, _entries.get(account_sid)


def put(account_sid: str, entry: CachedTwilio | None) -> None:
    if len(_loaded) > 100_000:
        _entries.clear()
        _loaded.clear()
    _entries[account_sid] = entry
    _loaded[account_sid] = time.monotonic()


def invalidate(account_sid: str) -> None:
    _entries.pop(account_sid, None)
    _loaded.pop(account_sid, None)
