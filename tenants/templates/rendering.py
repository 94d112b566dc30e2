"""Locale resolution and rendering of tenant-authored templates.

Email text is rendered with Jinja's sandbox (tenants write these templates; they must not reach
Python objects) and StrictUndefined (a missing variable is an error, not an empty string). HTML
is autoescaped; plain text and subjects are not. Rendering runs out of process, within a budget
(tenants/templates/sandbox.py); here templates are only parsed, to check them and list variables.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import meta
from jinja2.sandbox import SandboxedEnvironment

from tenants.templates import sandbox
from tenants.templates.sandbox import RenderFailed

__all__ = [
    "RenderFailed",
    "TemplateSyntaxError",
    "content_variables",
    "referenced_variables",
    "render_email",
    "required_variables",
    "resolve_locale",
]

_text_env = SandboxedEnvironment(autoescape=False, undefined=jinja2.StrictUndefined)
_html_env = SandboxedEnvironment(autoescape=True, undefined=jinja2.StrictUndefined)


class TemplateSyntaxError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _env(field: str) -> SandboxedEnvironment:
    return _html_env if field == "html" else _text_env


@lru_cache(maxsize=4096)
def _undeclared(field: str, source: str) -> frozenset[str]:
    """Parsing is the expensive part, and the same template is checked on every notification."""
    try:
        return frozenset(meta.find_undeclared_variables(_env(field).parse(source)))
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateSyntaxError(field, f"line {exc.lineno}: {exc.message}") from None


def referenced_variables(email: Mapping[str, Any] | None) -> set[str]:
    names: set[str] = set()
    for field in ("subject", "text", "html"):
        source = (email or {}).get(field)
        if source:
            names |= _undeclared(field, source)
    return names


def required_variables(content: Mapping[str, Any]) -> list[str]:
    """Variables a notification must supply for this locale: the WhatsApp list, then email-only ones."""
    ordered = list((content.get("whatsapp") or {}).get("variables", []))
    extra = sorted(referenced_variables(content.get("email")) - set(ordered))
    return ordered + extra


def _language(tag: str) -> str:
    return tag.replace("_", "-").split("-")[0].lower()


def resolve_locale(locales: Mapping[str, Any], default_locale: str, requested: str | None) -> str:
    """Exact (pt-BR, any case), then the language alone (pt), then another region of the same language
    (pt-PT finds pt-BR: the default locale if it is one, else the first in order), then the default."""
    if requested:
        if requested in locales:
            return requested
        by_lower = {k.lower().replace("_", "-"): k for k in locales}
        wanted = requested.lower().replace("_", "-")
        if wanted in by_lower:
            return by_lower[wanted]
        language = _language(requested)
        if language in by_lower:
            return by_lower[language]
        if default_locale in locales and _language(default_locale) == language:
            return default_locale
        same_language = sorted(k for k in locales if _language(k) == language)
        if same_language:
            return same_language[0]
    return default_locale


def content_variables(
    whatsapp: Mapping[str, Any], values: Mapping[str, Any], twilio_keys: list[str] | None = None
) -> dict[str, str]:
    """The Content API's ContentVariables (string values) from the admin's named variables. Twilio's own
    placeholders, when synced, decide the keys: numbered ones ("1", "2", in numeric order) take the names in
    order, named ones take the value of the same name. Unsynced, the names map in order to "1", "2", ..."""
    names = list(whatsapp.get("variables", []))
    if twilio_keys and not all(k.isdigit() for k in twilio_keys):
        return {key: str(values[key]) for key in twilio_keys}
    keys = sorted(twilio_keys, key=int) if twilio_keys else [str(i) for i in range(1, len(names) + 1)]
    return {key: str(values[name]) for key, name in zip(keys, names, strict=False)}


async def render_email(email: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, str | None]:
    """Subject, text and html rendered within the budget; RenderFailed when the template cannot be."""
    return await sandbox.render({field: email.get(field) or None for field in ("subject", "text", "html")}, values)
