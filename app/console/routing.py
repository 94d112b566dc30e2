"""Console: the routing policy editor, over tenants/routing's get_policy and put_policy (as PUT /v1/routing).

The form is turned into the same document the API takes and checked by the same msgspec schema, so
the errors are the API's 422s; their JSON pointers are mapped back to the form's fields and each error
is shown beside its field. Every error is found at once: a field found wrong is set aside and the
document checked again.
"""

from __future__ import annotations

from typing import Any, get_args

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.response import Redirect

from app.console.common import HANDLERS, changing, field_errors, form_lists, pairs, signed_in, words
from app.core.deps import DbSession
from app.core.errors import ValidationFailed
from tenants.routing import service
from tenants.routing.schemas import FallbackReason, RoutingPolicyDoc

REASONS = get_args(FallbackReason)
# form field → where it sits in the policy document (its JSON pointer, as the API's errors name it)
FIELDS: dict[str, tuple[str, ...]] = {
    "default_country": ("default_country",),
    "messaging_service_sid": ("whatsapp", "messaging_service_sid"),
    "by_country": ("whatsapp", "by_country"),
    "sender_rate_per_second": ("whatsapp", "sender_rate_per_second"),
    "email_on": ("fallback", "email_on"),
    "require_whatsapp_opt_in": ("require_whatsapp_opt_in",),
    "stop_words": ("inbound", "stop_words"),
    "start_words": ("inbound", "start_words"),
    "opt_out_confirmation": ("inbound", "opt_out_confirmation"),
}


def field_for(pointer: str) -> str:
    """The form field a JSON pointer falls in ("/whatsapp/by_country/*" → by_country); "" if none."""
    parts = tuple(p for p in pointer.split("/") if p)
    for name, path in FIELDS.items():
        if parts[: len(path)] == path:
            return name
    return ""


def _as_form(doc: RoutingPolicyDoc) -> dict[str, Any]:
    return {
        "default_country": doc.default_country,
        "messaging_service_sid": doc.whatsapp.messaging_service_sid or "",
        "by_country": "\n".join(f"{c}={sid}" for c, sid in sorted(doc.whatsapp.by_country.items())),
        "sender_rate_per_second": f"{doc.whatsapp.sender_rate_per_second:g}",
        "email_on": list(doc.fallback.email_on),
        "require_whatsapp_opt_in": doc.require_whatsapp_opt_in,
        "stop_words": ", ".join(doc.inbound.stop_words),
        "start_words": ", ".join(doc.inbound.start_words),
        "opt_out_confirmation": doc.inbound.opt_out_confirmation or "",
    }


def _document(
    form: dict[str, str], email_on: list[str], stored: RoutingPolicyDoc
) -> tuple[dict[str, Any], dict[str, str]]:
    """The policy document the form describes, over the stored one: what the form has no field for (consent
    ages, country rules, messaging-limit tiers) is kept as it is, not reset by a save. And the errors found
    before the schema (a rate that is no number)."""
    errors: dict[str, str] = {}
    rate: Any = form.get("sender_rate_per_second", "").strip()
    try:
        rate = float(rate)
    except ValueError:
        errors["sender_rate_per_second"] = "a number of messages per second, e.g. 80 or 0.5"
    whatsapp: dict[str, Any] = {
        "by_country": {k.upper(): v for k, v in pairs(form.get("by_country", "")).items()},
        "messaging_service_sid": form.get("messaging_service_sid", "").strip() or None,
    }
    if "sender_rate_per_second" not in errors:
        whatsapp["sender_rate_per_second"] = rate
    doc: dict[str, Any] = msgspec.to_builtins(stored)
    doc["whatsapp"].pop("sender_rate_per_second", None)  # the form's, or none (reported) when it is no number
    doc["whatsapp"].update(whatsapp)
    doc["fallback"]["email_on"] = email_on
    doc["inbound"].update(
        stop_words=words(form.get("stop_words", "")),
        start_words=words(form.get("start_words", "")),
        opt_out_confirmation=form.get("opt_out_confirmation", "").strip() or None,
    )
    doc["default_country"] = form.get("default_country", "").strip().upper()
    doc["require_whatsapp_opt_in"] = form.get("require_whatsapp_opt_in") == "on"
    return doc, errors


def check(doc: dict[str, Any], errors: dict[str, str]) -> RoutingPolicyDoc | None:
    """The schema's verdict on every field: errors (field → message) are added to `errors`."""
    for _ in FIELDS:
        try:
            valid = msgspec.convert(doc, RoutingPolicyDoc)
        except msgspec.ValidationError as exc:
            ((pointer, message),) = field_errors(exc).items()
            name = field_for(pointer)
            if not name or name in errors:
                errors[name or "form"] = message
                return None
            errors[name] = message
            *parents, leaf = FIELDS[name]
            holder = doc
            for part in parents:
                holder = holder[part]
            holder.pop(leaf, None)  # set aside, so the next pass reports the next field
            continue
        return None if errors else valid
    return None


class RoutingPages(Controller):
    path = "/console"
    include_in_schema = False
    exception_handlers = HANDLERS

    @get("/routing")
    async def routing(self, request: Request[Any, Any, Any], db_session: DbSession) -> Response[str]:
        ctx = await signed_in(request, db_session)
        doc = await service.get_policy(db_session, ctx.tenant)
        saved = request.query_params.get("saved") is not None
        return ctx.view("routing.html", f=_as_form(doc), errors={}, reasons=REASONS, saved=saved)

    @post("/routing", status_code=303)
    async def save(self, request: Request[Any, Any, Any], db_session: DbSession) -> Response[Any]:
        ctx, form = await changing(request, db_session, live=True)
        email_on = await form_lists(request, "email_on")
        doc, errors = _document(form, email_on, await service.get_policy(db_session, ctx.tenant))
        valid = check(doc, errors)
        if valid is not None:
            try:
                await service.put_policy(db_session, ctx.tenant, valid, actor=ctx.principal)
            except ValidationFailed as exc:
                await db_session.rollback()
                errors = {field_for(p) or "form": m for p, m in field_errors(exc).items()}
            else:
                return Redirect("/console/routing?saved=1", status_code=303)
        shown = {**form, "email_on": email_on, "require_whatsapp_opt_in": form.get("require_whatsapp_opt_in") == "on"}
        return ctx.view("routing.html", status_code=422, f=shown, errors=errors, reasons=REASONS, saved=False)


ROUTES = [RoutingPages]
