"""Operator console sessions: the operator token exchanged for a short-lived, server-side session.

Kept apart from the tenant admin's session (app/console/session.py) on purpose, so neither can open
the other's pages:

- its own cookie (`ngw_operator`, Path=/console/operator), never the tenant's `ngw_console`;
- its own keyed hash of the session id ("operator-session|..."), so an operator session id put in
  the tenant cookie (or a tenant one in this cookie) names no session at all;
- its own payload, marked `"kind": "operator"`, which the tenant loader never reads.

It is kept in the same store as tenant sessions (Redis when NOTIFYGW_REDIS_URL is set, else memory).
The session holds a keyed fingerprint of the operator token it was opened with; when the token is
changed (NOTIFYGW_OPERATOR_TOKEN, then a restart), every operator session ends on its next click.
Shorter-lived than a tenant session: the operator can suspend any tenant.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from app.console import session as sessions
from app.core.config import get_settings
from tenants.auth import operator_token_ok

COOKIE = "ngw_operator"
PRE_COOKIE = "ngw_operator_pre"  # the sign-in form's double-submit CSRF token
PATH = "/console/operator"
IDLE_SECONDS = 15 * 60  # a quarter of an hour without a click signs the operator out
MAX_SECONDS = 4 * 3600  # and half a working day at most


@dataclass(frozen=True)
class OperatorSession:
    csrf: str
    issued_at: float
    token_print: str

    def dump(self) -> str:
        return json.dumps({"kind": "operator", "c": self.csrf, "i": self.issued_at, "p": self.token_print})

    @classmethod
    def load(cls, raw: str | bytes) -> OperatorSession | None:
        try:
            d = json.loads(raw)
            if d.get("kind") != "operator":
                return None
            return cls(str(d["c"]), float(d["i"]), str(d["p"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            return None


def _keyed(label: bytes, value: str) -> str:
    pepper = get_settings().pepper.get().encode()
    return hmac.new(pepper, label + b"|" + value.encode(), hashlib.sha256).hexdigest()


def _hash(sid: str) -> str:
    return _keyed(b"operator-session", sid)


def _token_print() -> str:
    return _keyed(b"operator-token", get_settings().operator_token.get())


class SignInRefused(Exception):
    """Not the operator token."""


async def sign_in(token: str) -> tuple[str, OperatorSession]:
    """A new operator session; returns the cookie value (the only copy of the id) and the session."""
    if not operator_token_ok(token.strip()):
        raise SignInRefused
    sid = secrets.token_urlsafe(32)
    session = OperatorSession(secrets.token_urlsafe(32), time.time(), _token_print())
    await sessions.store().put(_hash(sid), session.dump(), IDLE_SECONDS)
    return sid, session


async def resume(sid: str | None) -> OperatorSession | None:
    """The operator session behind a cookie, if it is alive and was opened with today's operator token."""
    if not sid or len(sid) > 100:
        return None
    raw = await sessions.store().get(_hash(sid))
    if raw is None:
        return None
    session = OperatorSession.load(raw)
    if (
        session is None
        or time.time() - session.issued_at > MAX_SECONDS
        or not hmac.compare_digest(session.token_print, _token_print())
    ):
        await sessions.store().delete(_hash(sid))
        return None
    await sessions.store().put(_hash(sid), raw, IDLE_SECONDS)  # sliding: each click keeps it alive
    return session


async def sign_out(sid: str | None) -> None:
    if sid:
        await sessions.store().delete(_hash(sid))
