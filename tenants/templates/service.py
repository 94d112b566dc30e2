from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import Conflict, DependencyUnavailable, NotFound, ValidationFailed
from channels.base import ChannelError, FailureClass, TwilioCredentials
from channels.twilio_content import ContentItem
from tenants.accounts import quotas
from tenants.audit import service as audit
from tenants.credentials import service as credentials
from tenants.templates import approvals, sync
from tenants.templates.cache import TemplateContent
from tenants.templates.cache import contents as _contents
from tenants.templates.models import Template
from tenants.templates.rendering import TemplateSyntaxError, referenced_variables, required_variables
from tenants.templates.repository import TemplateRepository
from tenants.templates.schemas import (
    ContentApprovalOut,
    ContentItemOut,
    LocaleContent,
    SyncOut,
    TemplateBody,
    TemplateOut,
)

__all__ = ["TemplateContent"]  # re-exported: routing reads templates through content()

# From least to most usable: a template's overall approval_status is its locales' first in this order.
_ORDER = ("not_found", "disabled", "rejected", "paused", "unknown", "unsubmitted", "pending", "unverified", "approved")


def _validate(body: TemplateBody) -> None:
    if body.default_locale not in body.locales:
        raise ValidationFailed("default_locale must be one of the locales", pointer="/default_locale")
    for locale, content in body.locales.items():
        where = f"/locales/{locale}"
        if content.whatsapp is None and content.email is None:
            raise ValidationFailed("a locale needs whatsapp or email content", pointer=where)
        if content.whatsapp and len(set(content.whatsapp.variables)) != len(content.whatsapp.variables):
            raise ValidationFailed("variable names must be unique", pointer=f"{where}/whatsapp/variables")
        email = content.email
        if email is not None:
            if email.sendgrid_template_id is None and (
                email.subject is None or (email.text is None and email.html is None)
            ):
                raise ValidationFailed(
                    "email needs a sendgrid_template_id, or a subject with text or html", pointer=f"{where}/email"
                )
            if email.sendgrid_template_id is not None and any((email.subject, email.text, email.html)):
                raise ValidationFailed(
                    "use either sendgrid_template_id or subject/text/html, not both", pointer=f"{where}/email"
                )
            try:
                referenced_variables(msgspec.to_builtins(email))
            except TemplateSyntaxError as exc:
                raise ValidationFailed(exc.message, pointer=f"{where}/email/{exc.field}") from None
    used = {v for content in body.locales.values() for v in required_variables(msgspec.to_builtins(content))}
    for i, name in enumerate(body.sensitive_variables):
        if name not in used:
            raise ValidationFailed(f"'{name}' is not a variable of this template", pointer=f"/sensitive_variables/{i}")
    if len(set(body.sensitive_variables)) != len(body.sensitive_variables):
        raise ValidationFailed("sensitive variable names must be unique", pointer="/sensitive_variables")


def snapshot(t: Template) -> dict[str, Any]:
    return {
        "key": t.key,
        "description": t.description,
        "default_locale": t.default_locale,
        "locales": t.locales,
        "sensitive_variables": t.sensitive_variables,
    }


def _approval_out(content_sid: str, snap: dict[str, Any], whatsapp: dict[str, Any]) -> ContentApprovalOut:
    at = snap.get("synced_at")
    return ContentApprovalOut(
        content_sid=content_sid,
        approval_status=snap["approval_status"],
        sendable=approvals.unusable(whatsapp, snap) is None,
        twilio_status=snap.get("twilio_status"),
        category=snap.get("category"),
        language=snap.get("language"),
        variables=snap.get("variables"),
        rejection_reason=snap.get("rejection_reason"),
        synced_at=datetime.fromisoformat(at) if at else None,
    )


def render(t: Template) -> TemplateOut:
    by_locale = {
        locale: _approval_out(sid, approvals.of(t.approvals or {}, sid), t.locales[locale]["whatsapp"])
        for locale, sid in approvals.content_sids(t.locales).items()
    }
    statuses = {a.approval_status for a in by_locale.values()}
    overall = next((s for s in _ORDER if s in statuses), None) if statuses else None
    if overall is None and statuses:  # a status outside _ORDER (never written today)
        overall = sorted(statuses)[0]
    return TemplateOut(
        id=t.id,
        key=t.key,
        description=t.description,
        default_locale=t.default_locale,
        locales=msgspec.convert(t.locales, dict[str, LocaleContent]),
        sensitive_variables=list(t.sensitive_variables or []),
        created_at=t.created_at,
        updated_at=t.updated_at,
        approval_status=overall,
        whatsapp_approvals=by_locale,
    )


async def checked_approvals(session: AsyncSession, tenant_id: uuid.UUID, body: TemplateBody) -> dict[str, Any]:
    """Each ContentSid the template names must be one of the tenant's Twilio account's Content templates, and
    its variables must fill Twilio's: else a 422 pointing at the field. A ContentSid the last sync did not list
    (or no sync yet) makes one sync first: it may have been created in Twilio a moment ago. Without Twilio
    credentials nothing can be checked: the template is stored `unverified`, and the first sync checks it.
    Returns the template's `approvals` (unapproved ones included: they are stored, flagged, and never sent)."""
    wanted = {
        locale: (content.whatsapp.content_sid, list(content.whatsapp.variables))
        for locale, content in body.locales.items()
        if content.whatsapp is not None
    }
    if not wanted:
        return {}
    row = await credentials.find_twilio(session, tenant_id)
    if row is None:
        return {}
    sids = {sid for sid, _ in wanted.values()}
    known = await sync.listed(session, tenant_id, row.account_sid, sids)
    if sids - set(known):
        try:
            await sync.sync(session, tenant_id)
        except ChannelError as exc:
            if exc.failure is FailureClass.BAD_CREDENTIALS:
                raise ValidationFailed(
                    "Twilio refused the stored credentials, so the ContentSid cannot be checked: "
                    "fix them with PUT /v1/providers/twilio",
                    pointer=f"/locales/{next(iter(wanted))}/whatsapp/content_sid",
                ) from None
            raise DependencyUnavailable(
                "Twilio's Content API did not answer, so the ContentSid cannot be checked; nothing was stored",
                retry_after=10,
            ) from None
        known = await sync.listed(session, tenant_id, row.account_sid, sids)
    errors = []
    for locale, (sid, names) in wanted.items():
        where = f"/locales/{locale}/whatsapp"
        if sid not in known:
            errors.append(
                {
                    "pointer": f"{where}/content_sid",
                    "detail": f"{sid} is not a Content template of the Twilio account {row.account_sid}",
                }
            )
            continue
        problem = approvals.variables_problem(names, list(known[sid].variables))
        if problem is not None:
            errors.append({"pointer": f"{where}/variables", "detail": problem})
    if errors:
        raise ValidationFailed(
            "; ".join(e["detail"] for e in errors) if len(errors) == 1 else "the Content templates do not match",
            errors=errors,
        )
    return {sid: approvals.snapshot(known[sid]) for sid in sids}


async def get(session: AsyncSession, tenant_id: uuid.UUID, key: str) -> Template:
    found = await TemplateRepository(session, tenant_id).by_key(key)
    if found is None:
        raise NotFound("template not found")
    return found


async def content(session: AsyncSession, tenant_id: uuid.UUID, key: str) -> TemplateContent | None:
    """The template's locales, cached briefly: read on every accept and every routed notification."""
    cached = _contents.get((tenant_id, key))
    if cached is None:
        found = await TemplateRepository(session, tenant_id).by_key(key)
        if found is None:
            return None
        cached = TemplateContent(
            found.key,
            found.default_locale,
            found.locales,
            found.approvals or {},
            frozenset(found.sensitive_variables),
        )
        _contents.put((tenant_id, key), cached)
    return cached


RESERVED_KEYS = frozenset({"sync"})  # /v1/templates/sync is the Content sync, not a template


async def create(session: AsyncSession, tenant_id: uuid.UUID, key: str, body: TemplateBody, *, actor: Any) -> Template:
    if key in RESERVED_KEYS:
        raise ValidationFailed(f"'{key}' is reserved: POST /v1/templates/{key} syncs from Twilio", pointer="/key")
    _validate(body)
    await quotas.check_room(session, tenant_id, "templates", Template)
    checked = await checked_approvals(session, tenant_id, body)
    template = TemplateRepository(session, tenant_id).add(
        Template(
            key=key,
            description=body.description,
            default_locale=body.default_locale,
            locales=msgspec.to_builtins(body.locales),
            approvals=checked,
            sensitive_variables=list(body.sensitive_variables),
        )
    )
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise Conflict(
            f"template '{key}' exists; PUT /v1/templates/{key} replaces it",
            errors=[{"pointer": "/key", "detail": "already exists"}],
        ) from None
    audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="template.created",
        target_type="template",
        target_id=key,
        after=snapshot(template),
    )
    return template


async def replace(session: AsyncSession, tenant_id: uuid.UUID, key: str, body: TemplateBody, *, actor: Any) -> Template:
    template = await get(session, tenant_id, key)
    _validate(body)
    checked = await checked_approvals(session, tenant_id, body)
    before = snapshot(template)
    template.description = body.description
    template.default_locale = body.default_locale
    template.locales = msgspec.to_builtins(body.locales)
    template.approvals = checked
    template.sensitive_variables = list(body.sensitive_variables)
    await session.flush()
    _contents.invalidate_on_commit(session, (tenant_id, key))
    audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="template.updated",
        target_type="template",
        target_id=key,
        before=before,
        after=snapshot(template),
    )
    return template


async def delete(session: AsyncSession, tenant_id: uuid.UUID, key: str, *, actor: Any) -> None:
    template = await get(session, tenant_id, key)
    before = snapshot(template)
    await session.delete(template)
    _contents.invalidate_on_commit(session, (tenant_id, key))
    audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="template.deleted",
        target_type="template",
        target_id=key,
        before=before,
    )


async def sync_now(session: AsyncSession, tenant_id: uuid.UUID, *, actor: Any) -> SyncOut:
    """POST /v1/templates/sync: read the Twilio account's Content templates now, and audit it."""
    try:
        result = await sync.sync(session, tenant_id)
    except ChannelError as exc:
        if exc.failure is FailureClass.BAD_CREDENTIALS:
            raise Conflict("Twilio refused the stored credentials: fix them with PUT /v1/providers/twilio") from None
        raise DependencyUnavailable("Twilio's Content API did not answer; nothing changed", retry_after=10) from None
    if result is None:
        raise Conflict("no Twilio credentials are stored: PUT /v1/providers/twilio first (it syncs too)")
    audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="templates.synced",
        target_type="twilio_contents",
        target_id=result.account_sid,
        after={"items": result.items, "by_status": result.by_status, "templates_changed": result.templates_changed},
    )
    rows = await sync.listed(session, tenant_id, result.account_sid)
    return SyncOut(
        account_sid=result.account_sid,
        synced_at=result.synced_at,
        items=result.items,
        by_status=result.by_status,
        templates_changed=result.templates_changed,
        contents=[
            ContentItemOut(
                content_sid=r.content_sid,
                approval_status=r.approval_status,
                twilio_status=r.twilio_status,
                category=r.category,
                language=r.language,
                friendly_name=r.friendly_name,
                variables=dict(r.variables),
                rejection_reason=r.rejection_reason,
            )
            for r in sorted(rows.values(), key=lambda r: r.content_sid)
        ],
    )


async def prefetch_contents(creds: TwilioCredentials) -> list[ContentItem] | ChannelError:
    """Before Twilio credentials are stored: their Content templates, read first so that no row is locked
    across the call (or the error, kept for `sync_after_store`)."""
    try:
        return await sync.fetch(creds)
    except ChannelError as exc:
        return exc


async def sync_after_store(
    session: AsyncSession, tenant_id: uuid.UUID, account_sid: str, fetched: list[ContentItem] | ChannelError
) -> None:
    """Twilio credentials were just stored: apply their Content templates, read just before. A failure keeps
    the credentials (they were verified) and is recorded on the sync state; the periodic pass retries it."""
    if isinstance(fetched, ChannelError):
        await sync.record_failure(session, tenant_id, fetched)
    else:
        await sync.apply(session, tenant_id, account_sid, fetched)
