from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import Conflict, NotFound, ValidationFailed
from app.core.ttlcache import TTLCache
from tenants.audit import service as audit
from tenants.templates.models import Template
from tenants.templates.rendering import TemplateSyntaxError, referenced_variables
from tenants.templates.repository import TemplateRepository
from tenants.templates.schemas import LocaleContent, TemplateBody, TemplateOut


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
            if email.sendgrid_template_id is None and (email.subject is None or (email.text is None and email.html is None)):
                raise ValidationFailed("email needs a sendgrid_template_id, or a subject with text or html", pointer=f"{where}/email")
            if email.sendgrid_template_id is not None and any((email.subject, email.text, email.html)):
                raise ValidationFailed("use either sendgrid_template_id or subject/text/html, not both", pointer=f"{where}/email")
            try:
                referenced_variables(msgspec.to_builtins(email))
            except TemplateSyntaxError as exc:
                raise ValidationFailed(exc.message, pointer=f"{where}/email/{exc.field}") from None


def snapshot(t: Template) -> dict[str, Any]:
    return {"key": t.key, "description": t.description, "default_locale": t.default_locale, "locales": t.locales}


def render(t: Template) -> TemplateOut:
    return TemplateOut(id=t.id, key=t.key, description=t.description, default_locale=t.default_locale,
                       locales=msgspec.convert(t.locales, dict[str, LocaleContent]), created_at=t.created_at,
                       updated_at=t.updated_at)


async def get(session: AsyncSession, tenant_id: uuid.UUID, key: str) -> Template:
    found = await TemplateRepository(session, tenant_id).by_key(key)
    if found is None:
        raise NotFound("template not found")
    return found


@dataclass(frozen=True)
class TemplateContent:
    """What sending needs of a template, detached from the session so it can be cached."""

    key: str
    default_locale: str
    locales: dict[str, Any]


_contents: TTLCache[TemplateContent] = TTLCache()


async def content(session: AsyncSession, tenant_id: uuid.UUID, key: str) -> TemplateContent | None:
    """The template's locales, cached briefly: read on every accept and every routed notification."""
    cached = _contents.get((tenant_id, key))
    if cached is None:
        found = await TemplateRepository(session, tenant_id).by_key(key)
        if found is None:
            return None
        cached = TemplateContent(found.key, found.default_locale, found.locales)
        _contents.put((tenant_id, key), cached)
    return cached


async def create(session: AsyncSession, tenant_id: uuid.UUID, key: str, body: TemplateBody, *, actor: Any) -> Template:
    _validate(body)
    template = TemplateRepository(session, tenant_id).add(Template(
        key=key, description=body.description, default_locale=body.default_locale,
        locales=msgspec.to_builtins(body.locales)))
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise Conflict(f"template '{key}' exists; PUT /v1/templates/{key} replaces it",
                       errors=[{"pointer": "/key", "detail": "already exists"}]) from None
    audit.record(session, tenant_id=tenant_id, actor=actor, action="template.created", target_type="template",
                 target_id=key, after=snapshot(template))
    return template


async def replace(session: AsyncSession, tenant_id: uuid.UUID, key: str, body: TemplateBody, *, actor: Any) -> Template:
    template = await get(session, tenant_id, key)
    _validate(body)
    before = snapshot(template)
    template.description = body.description
    template.default_locale = body.default_locale
    template.locales = msgspec.to_builtins(body.locales)
    await session.flush()
    _contents.invalidate_on_commit(session, (tenant_id, key))
    audit.record(session, tenant_id=tenant_id, actor=actor, action="template.updated", target_type="template",
                 target_id=key, before=before, after=snapshot(template))
    return template


async def delete(session: AsyncSession, tenant_id: uuid.UUID, key: str, *, actor: Any) -> None:
    template = await get(session, tenant_id, key)
    before = snapshot(template)
    await session.delete(template)
    _contents.invalidate_on_commit(session, (tenant_id, key))
    audit.record(session, tenant_id=tenant_id, actor=actor, action="template.deleted", target_type="template",
                 target_id=key, before=before)
