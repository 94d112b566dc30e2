"""What Twilio says of a template's ContentSids, as the template row keeps it, and what may be sent.

Each template row carries `approvals`, {content_sid: snapshot}, refreshed at create/update and by every
Content sync (tenants/templates/sync.py), so routing reads it with the template and asks nothing else.

approval_status, as the API shows it and routing reads it:

| status | meaning | sent |
|---|---|---|
| approved | WhatsApp approved it | yes |
| pending | submitted (Twilio's `received` or `pending`), under review | no |
| rejected, paused, disabled | WhatsApp refused it, or stopped it for quality | no |
| unsubmitted | never submitted for WhatsApp approval | no |
| unknown | a status Twilio reports that we do not know (its string is in `twilio_status`) | no |
| not_found | the tenant's Twilio account no longer lists it | no |
| unverified | never checked: stored before any Twilio credentials or sync | yes (Twilio decides, as before) |
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

SENDABLE = frozenset({"approved", "unverified"})
UNVERIFIED: dict[str, Any] = {"approval_status": "unverified"}
NOT_FOUND = "not_found"


def snapshot(row: Any, synced_at: datetime | None = None) -> dict[str, Any]:
    """The template's copy of one TwilioContent row."""
    at = synced_at or row.synced_at
    return {
        "approval_status": row.approval_status,
        "twilio_status": row.twilio_status,
        "category": row.category,
        "language": row.language,
        "variables": list(row.variables),
        "rejection_reason": row.rejection_reason,
        "synced_at": at.isoformat() if at else None,
    }


def not_found(synced_at: datetime) -> dict[str, Any]:
    return {"approval_status": NOT_FOUND, "synced_at": synced_at.isoformat()}


def content_sids(locales: Mapping[str, Any]) -> dict[str, str]:
    """{locale: content_sid} of every locale with WhatsApp content."""
    return {
        locale: c["whatsapp"]["content_sid"]
        for locale, c in locales.items()
        if isinstance(c, Mapping) and c.get("whatsapp") and c["whatsapp"].get("content_sid")
    }


def of(approvals: Mapping[str, Any], content_sid: str) -> dict[str, Any]:
    return dict(approvals.get(content_sid) or UNVERIFIED)


def numbered(keys: list[str]) -> bool:
    return bool(keys) and all(k.isdigit() for k in keys)


def variables_problem(names: list[str], twilio_keys: list[str] | None) -> str | None:
    """Why the admin's variable names cannot fill Twilio's placeholders, or None when they can (or Twilio's
    are unknown). Numbered placeholders ("1", "2") take the names in order; named ones need the same names."""
    if twilio_keys is None:
        return None
    if not twilio_keys:
        return f"Twilio's template has no variables; remove these {len(names)}" if names else None
    if numbered(twilio_keys):
        if len(names) != len(twilio_keys):
            return (
                f"Twilio's template has {len(twilio_keys)} numbered variables ({', '.join(sorted(twilio_keys, key=int))});"
                f" name {len(twilio_keys)} here, in order ({len(names)} given)"
            )
        return None
    if set(names) != set(twilio_keys):
        return f"Twilio's template has the named variables {', '.join(sorted(twilio_keys))}; use exactly those names"
    return None


def unusable(whatsapp: Mapping[str, Any], approval: Mapping[str, Any]) -> tuple[str, str] | None:
    """(result, why) when this locale's template must not be sent to WhatsApp; None when it may."""
    status = str(approval.get("approval_status") or "unverified")
    sid = whatsapp.get("content_sid")
    if status not in SENDABLE:
        if status == NOT_FOUND:
            why = f"{sid} is not in the Twilio account's Content templates (last sync {approval.get('synced_at')})"
        else:
            raw = approval.get("twilio_status")
            said = f" (Twilio: {raw})" if raw and raw != status else ""
            reason = f": {approval['rejection_reason']}" if approval.get("rejection_reason") else ""
            why = f"{sid} is {status}{said} for WhatsApp{reason}"[:500]
        return status, why
    problem = variables_problem(list(whatsapp.get("variables") or []), approval.get("variables"))
    if problem is not None:
        return "variables_mismatch", f"{sid}: {problem}"
    return None
