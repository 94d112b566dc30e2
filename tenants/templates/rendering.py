"""Locale resolution and rendering of tenant-authored templates.

Email text is rendered with Jinja's sandbox (tenants write these templates; they must not reach
Python objects) and StrictUndefined (a missing variable is an error, not an empty string). HTML
is autoescaped; plain text and subjects are not.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Mapping

import jinja2
from jinja2 import meta
from jinja2.sandbox import SandboxedEnvironment

_text_env = SandboxedEnvironment(autoescape=False, undefined=jinja2.StrictUndefined)
_html_env = SandboxedEnvironment(autoescape=True, undefined=jinja2.StrictUndefined)


class TemplateSyntaxError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _env(field: str) -> SandboxedEnvironment:
    return _html_env if field == "html" else _text_env


@lru_cache(maxsize=2048)
def _compiled(field: str, source: str) -> jinja2.Template:
    return _env(field).from_string(source)


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


def resolve_locale(locales: Mapping[str, Any], default_locale: str, requested: str | None) -> str:
    """Exact (pt-BR), then language (pt), then any regional variant of it, then the template's default."""
    if requested:
        if requested in locales:
            return requested
        by_lower = {k.lower(): k for k in locales}
        if requested.lower() in by_lower:
            return by_lower[requested.lower()]
        language = requested.split("-")[0].lower()
        if language in by_lower:
            return by_lower[language]
    return default_locale


def content_variables(whatsapp: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, str]:
    """Named variables, in order, become the Content API's {"1": ..., "2": ...} with string values."""
    return {str(i): str(values[name]) for i, name in enumerate(whatsapp.get("variables", []), start=1)}


def render_email(email: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for field in ("subject", "text", "html"):
        source = email.get(field)
        out[field] = _compiled(field, source).render(**{k: str(v) for k, v in values.items()}) if source else None
    return out
