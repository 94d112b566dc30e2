"""What sending needs of a template, cached briefly per process (read on every accept and routed notification).

A template's change (an edit, or a Content sync that changed what Twilio reports of its ContentSids) clears
the entry when its transaction commits; other processes see it within the TTL (README, "Caches").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.core.ttlcache import TTLCache


@dataclass(frozen=True)
class TemplateContent:
    """The template's locales and its ContentSids' approvals, detached from the session so it can be cached."""

    key: str
    default_locale: str
    locales: dict[str, Any]
    approvals: dict[str, Any] = field(default_factory=dict)
    sensitive: frozenset[str] = frozenset()  # variables sealed on the notification (app/notify/sensitive.py)


contents: TTLCache[TemplateContent] = TTLCache()
