"""Console: the routing policy's rules, over tenants/routing's get_policy and put_policy (as PUT /v1/routing).

Three parts of the policy that the Routing page has no fields for: the consent ages per template category
(`consent_max_age_days`), the country rules (`countries`, one form row each) and the WhatsApp messaging
limits (`whatsapp.limits`). Beside them, each sender's tier in force and its count of distinct people in
the last 24 h (app/notify/tiers.py `senders_state`).

A save starts from the stored policy and replaces only these three parts, so the Routing page's fields stay
as stored (and a Routing save keeps these). The document is checked by the API's own schema and rules, so
the errors are the API's 422s; their JSON pointers (`/countries/1/quiet_hours/start`) are mapped to the
form's fields, and every error is found at once: a wrong value is set aside and the document checked again.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, get_args

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.response import Redirect

from app.console.common import HANDLERS, Ctx, changing, field_errors, signed_in
from app.core.deps import DbSession
from app.core.errors import ValidationFailed
from app.notify import tiers
from tenants.credentials import service as credentials
from tenants.routing import rules, service
from tenants.routing.schemas import CATEGORIES, RoutingPolicyDoc, SenderKey, Tier

AGES = ("default", *CATEGORIES)  # consent_max_age_days' keys, as the API names them
TIER_CHOICES = tuple(str(t) for t in get_args(Tier))  # 250 … 100000, unlimited
LIMITS = ("default_tier", "tiers", "at_cap", "hold_seconds")
EMPTY_ROWS = 3  # blank country rows under the stored ones: add a rule by filling one in
MAX_ROWS = 400  # form rows read (the schema allows 300 rules)
ROW = re.compile(r"^(country|opt_in|blocked|quiet_start|quiet_end|remove)_(\d{1,3})$")
# a placeholder that the schema takes, for a value set aside after its error was noted
_OPT_IN = {True: "required", False: "not_required"}  # a country rule's opt-in override; absent: the tenant's
_PLACEHOLDER = {"country": "AA", "start": "00:00", "end": "00:01"}


def field_for(pointer: str, rows: Sequence[int] = ()) -> str:
    """The form field a JSON pointer falls in ("/countries/1/quiet_hours/start" → quiet_start_<its form row>,
    "/whatsapp/limits/tiers/*" → tiers); "" if none. `rows`: the form row of each rule in the document."""
    parts = [p for p in pointer.split("/") if p]
    match parts:
        case ["consent_max_age_days", key, *_] if key in AGES:
            return f"consent_{key}"
        case ["countries", index, *rest] if index.isdigit():
            i = int(index)
            row = rows[i] if i < len(rows) else i
            if rest[:1] == ["quiet_hours"]:
                return f"quiet_{'end' if rest[1:2] == ['end'] else 'start'}_{row}"
            leaf = {"require_whatsapp_opt_in": "opt_in", "blocked": "blocked"}.get(rest[0] if rest else "", "country")
            return f"{leaf}_{row}"
        case ["whatsapp", "limits", name, *_] if name in LIMITS:
            return name
    return ""


def _set_aside(doc: dict[str, Any], name: str, rows: Sequence[int]) -> None:
    """Put the value behind a form field out of the schema's way (its error is noted), so the next pass of
    the check reports the next field."""
    limits = doc["whatsapp"]["limits"]
    if name.startswith("consent_"):
        doc["consent_max_age_days"].pop(name.removeprefix("consent_"), None)
    elif name in LIMITS:
        limits.pop(name, None)
    else:
        leaf, _, row = name.rpartition("_")
        rule = doc["countries"][rows.index(int(row))]
        if leaf == "country":
            rule["country"] = _PLACEHOLDER["country"]
        elif leaf in ("opt_in", "blocked"):
            rule.pop("require_whatsapp_opt_in" if leaf == "opt_in" else "blocked", None)
        elif isinstance(rule.get("quiet_hours"), dict):
            end = leaf == "quiet_end"
            rule["quiet_hours"]["end" if end else "start"] = _PLACEHOLDER["end" if end else "start"]
        else:
            rule["quiet_hours"] = None


def _tier_line(tiers_: dict[str, Any]) -> str:
    """The first `sender=tier` line the schema refuses (msgspec names no dict key in its error)."""
    for sender, tier in tiers_.items():
        try:
            msgspec.convert({sender: tier}, dict[SenderKey, Tier])
        except msgspec.ValidationError:
            return f"{sender}={tier}: "
    return ""


def check(doc: dict[str, Any], errors: dict[str, str], rows: Sequence[int]) -> RoutingPolicyDoc | None:
    """The schema's and the policy rules' verdict on every field: errors (field → message) are added to
    `errors`. The valid policy when there are none."""
    seen: set[str] = set()
    while True:
        try:
            valid = msgspec.convert(doc, RoutingPolicyDoc)
        except msgspec.ValidationError as exc:
            ((pointer, message),) = field_errors(exc).items()
            name = field_for(pointer, rows)
            if not name or pointer in seen:  # not a field of this form, or not set aside: give up here
                errors.setdefault(name or "form", message)
                return None
            seen.add(pointer)
            if name == "tiers":
                message = _tier_line(doc["whatsapp"]["limits"].get("tiers") or {}) + message
            errors.setdefault(name, message)
            _set_aside(doc, name, rows)
            continue
        for error in rules.validate(valid):  # known countries, none twice, quiet hours not empty
            errors.setdefault(field_for(error["pointer"], rows) or "form", error["detail"])
        return None if errors else valid


def _number(text: str) -> int | str | None:
    text = text.strip()
    return int(text) if text.isdigit() else (text or None)


def _document(form: dict[str, str], stored: RoutingPolicyDoc) -> tuple[dict[str, Any], dict[str, str], list[int]]:
    """The policy the form describes over the stored one (its other fields kept as stored), the errors found
    before the schema (no number where one goes, a tier line without `=`), and each rule's form row."""
    errors: dict[str, str] = {}
    doc: dict[str, Any] = msgspec.to_builtins(stored)
    ages: dict[str, Any] = {}
    for key in AGES:
        value = _number(form.get(f"consent_{key}", ""))
        if isinstance(value, str):
            errors[f"consent_{key}"] = "a whole number of days (1–36500), or empty for no limit"
        elif value is not None:
            ages[key] = value
    doc["consent_max_age_days"] = ages
    doc["countries"], rows = _countries(form)
    limits: dict[str, Any] = {"at_cap": form.get("at_cap", "")}
    tier = _number(form.get("default_tier", ""))
    if tier is not None:
        limits["default_tier"] = tier
    hold = _number(form.get("hold_seconds", ""))
    if isinstance(hold, str):
        errors["hold_seconds"] = "a whole number of seconds (0–86400)"
    elif hold is not None:
        limits["hold_seconds"] = hold
    senders: dict[str, Any] = {}
    for line in form.get("tiers", "").splitlines():
        sender, sep, value = line.partition("=")
        if not line.strip():
            continue
        if not sep or not sender.strip():
            errors.setdefault("tiers", f"{line.strip()}: one sender=tier a line, e.g. whatsapp:+14155238886=1000")
            continue
        senders[sender.strip()] = _number(value)
    limits["tiers"] = senders
    doc["whatsapp"]["limits"] = limits
    return doc, errors, rows


def _countries(form: dict[str, str]) -> tuple[list[dict[str, Any]], list[int]]:
    """The rules of the form's filled rows (a blank row, or one ticked "remove", is no rule), and their rows."""
    found = sorted({int(m.group(2)) for k in form if (m := ROW.match(k))})
    rules_: list[dict[str, Any]] = []
    rows: list[int] = []
    for r in found[:MAX_ROWS]:
        country = form.get(f"country_{r}", "").strip().upper()
        opt_in = form.get(f"opt_in_{r}", "")
        blocked = form.get(f"blocked_{r}") == "on"
        start, end = form.get(f"quiet_start_{r}", "").strip(), form.get(f"quiet_end_{r}", "").strip()
        if form.get(f"remove_{r}") == "on" or not (country or opt_in or blocked or start or end):
            continue
        rule: dict[str, Any] = {"country": country, "blocked": blocked}
        rule["require_whatsapp_opt_in"] = {v: k for k, v in _OPT_IN.items()}.get(opt_in, opt_in or None)
        if start or end:
            rule["quiet_hours"] = {k: v for k, v in (("start", start), ("end", end)) if v}
        rules_.append(rule)
        rows.append(r)
    return rules_, rows


def _as_form(doc: RoutingPolicyDoc) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    ages = msgspec.to_builtins(doc.consent_max_age_days)
    limits = doc.whatsapp.limits
    f: dict[str, Any] = {f"consent_{k}": "" if ages.get(k) is None else str(ages[k]) for k in AGES}
    f |= {
        "default_tier": str(limits.default_tier),
        "tiers": "\n".join(f"{s}={t}" for s, t in sorted(limits.tiers.items())),
        "at_cap": limits.at_cap,
        "hold_seconds": str(limits.hold_seconds),
    }
    rows = [
        {
            "n": n,
            "country": rule.country,
            "opt_in": "" if rule.require_whatsapp_opt_in is None else _OPT_IN[rule.require_whatsapp_opt_in],
            "blocked": rule.blocked,
            "quiet_start": rule.quiet_hours.start if rule.quiet_hours else "",
            "quiet_end": rule.quiet_hours.end if rule.quiet_hours else "",
        }
        for n, rule in enumerate(doc.countries)
    ]
    rows += [_blank(len(rows) + i) for i in range(EMPTY_ROWS)]
    return f, rows


def _blank(n: int) -> dict[str, Any]:
    return {"n": n, "country": "", "opt_in": "", "blocked": False, "quiet_start": "", "quiet_end": ""}


def _typed_rows(form: dict[str, str]) -> list[dict[str, Any]]:
    """The rows as they were typed (a refused form is shown again as it was sent)."""
    found = sorted({int(m.group(2)) for k in form if (m := ROW.match(k))})[:MAX_ROWS]
    return [
        {
            "n": r,
            "country": form.get(f"country_{r}", ""),
            "opt_in": form.get(f"opt_in_{r}", ""),
            "blocked": form.get(f"blocked_{r}") == "on",
            "quiet_start": form.get(f"quiet_start_{r}", ""),
            "quiet_end": form.get(f"quiet_end_{r}", ""),
            "remove": form.get(f"remove_{r}") == "on",
        }
        for r in found
    ]


async def _page(
    ctx: Ctx,
    db: DbSession,
    policy: RoutingPolicyDoc,
    *,
    status_code: int = 200,
    f: dict[str, Any],
    rows: list[dict[str, Any]],
    errors: dict[str, str] | None = None,
    saved: bool = False,
) -> Response[str]:
    twilio = await credentials.find_twilio(db, ctx.tenant)
    own = [twilio.whatsapp_from, twilio.messaging_service_sid] if twilio else []
    senders = await tiers.senders_state(db, ctx.tenant, policy, also=[s for s in own if s])
    return ctx.view(
        "rules.html",
        status_code=status_code,
        f=f,
        rows=rows,
        errors=errors or {},
        saved=saved,
        categories=CATEGORIES,
        tier_choices=TIER_CHOICES,
        senders=senders,
        policy=policy,
    )


class RulesPages(Controller):
    path = "/console"
    include_in_schema = False
    exception_handlers = HANDLERS

    @get("/rules")
    async def rules_page(self, request: Request[Any, Any, Any], db_session: DbSession) -> Response[str]:
        ctx = await signed_in(request, db_session)
        policy = await service.get_policy(db_session, ctx.tenant)
        f, rows = _as_form(policy)
        saved = request.query_params.get("saved") is not None
        return await _page(ctx, db_session, policy, f=f, rows=rows, saved=saved)

    @post("/rules", status_code=303)
    async def save(self, request: Request[Any, Any, Any], db_session: DbSession) -> Response[Any]:
        ctx, form = await changing(request, db_session, live=True)
        stored = await service.get_policy(db_session, ctx.tenant)
        doc, errors, rows = _document(form, stored)
        valid = check(doc, errors, rows)
        if valid is not None:
            try:
                await service.put_policy(db_session, ctx.tenant, valid, actor=ctx.principal)
            except ValidationFailed as exc:
                await db_session.rollback()
                errors = {field_for(p, rows) or "form": m for p, m in field_errors(exc).items()}
            else:
                return Redirect("/console/rules?saved=1", status_code=303)
        typed = {k: form.get(k, "") for k in (*(f"consent_{k}" for k in AGES), *LIMITS)}
        shown = _typed_rows(form)
        shown += [_blank(max([r["n"] for r in shown], default=-1) + 1 + i) for i in range(1 if shown else EMPTY_ROWS)]
        return await _page(ctx, db_session, stored, status_code=422, f=typed, rows=shown, errors=errors)


ROUTES = [RulesPages]
