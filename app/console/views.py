"""Rendering console pages: one Jinja environment over app/console/templates, autoescaped.

Every value from tenants and people (template text, names, message bodies) reaches the page through
Jinja's autoescape; nothing is marked safe. Pages carry a strict Content-Security-Policy: scripts and
styles only from /console/static, no inline script, no framing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import Response

HERE = Path(__file__).parent
STATIC = HERE / "static"
_env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)

HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; connect-src 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",  # pages show personal data and one-time keys
}


def page(name: str, *, status_code: int = 200, **context: Any) -> Response[str]:
    html = _env.get_template(name).render(**context)
    return Response(html, status_code=status_code, media_type="text/html; charset=utf-8", headers=HEADERS)
