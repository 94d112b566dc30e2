"""Every JSON request body is decoded here: bounded in depth, and free of U+0000, before any handler runs.

PostgreSQL cannot store U+0000 in text or jsonb, and a body nested thousands deep exhausts the
decoder's recursion (a 500 before authentication). Both are the client's error: deep nesting is a
400, a NUL is a 422 whose JSON pointer names the field. Litestar decodes bodies through
`Request.json()`; `JsonGuardedRequest` is installed as the app's request class, so every route is
covered. Routes that read raw bytes (SendGrid's signed batch) call `decode()` themselves.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.serialization import decode_json
from litestar.types import Empty

from app.core.errors import AppError, ValidationFailed

# Our schemas nest five levels at most; free-form metadata gets room to spare.
MAX_DEPTH = 32
_NUL_ESCAPE = b"\\u0000"


class MalformedJson(AppError):
    status_code = 400
    title = "Malformed request"
    type_slug = "malformed-request"


def _escape(key: str) -> str:  # RFC 6901
    return key.replace("~", "~0").replace("/", "~1")


def check(value: Any, *, find_nul: bool = True) -> None:
    """Raise MalformedJson past MAX_DEPTH, ValidationFailed (with a pointer) at the first U+0000."""
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, pointer, depth = stack.pop()
        if isinstance(item, str):
            if find_nul and "\x00" in item:
                raise ValidationFailed("text may not contain NUL (U+0000) characters", pointer=pointer or "/")
            continue
        if isinstance(item, (dict, list)):
            if depth >= MAX_DEPTH:
                raise MalformedJson(f"JSON nested deeper than {MAX_DEPTH} levels")
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in pairs:
                child_pointer = f"{pointer}/{_escape(str(key))}"
                if find_nul and isinstance(key, str) and "\x00" in key:
                    raise ValidationFailed("keys may not contain NUL (U+0000) characters", pointer=child_pointer)
                stack.append((child, child_pointer, depth + 1))


def decode(body: bytes, type_decoders: Any = None) -> Any:
    try:
        value = decode_json(body or b"null", type_decoders=type_decoders)
    except RecursionError:
        raise MalformedJson(f"JSON nested deeper than {MAX_DEPTH} levels") from None
    # Cheap byte tests first: a body with few brackets cannot be deep, one without the escape has no NUL
    # (a raw NUL byte is not valid JSON, so the decoder refused it already).
    find_nul = _NUL_ESCAPE in body
    if find_nul or body.count(b"[") + body.count(b"{") > MAX_DEPTH:
        check(value, find_nul=find_nul)
    return value


class JsonGuardedRequest(Request[Any, Any, Any]):
    async def json(self) -> Any:
        if self._json is Empty:
            if (cached := self._connection_state.json) is not Empty:
                self._json = cached
            else:
                self._json = self._connection_state.json = decode(
                    await self.body(), type_decoders=self.route_handler.resolve_type_decoders()
                )
        return self._json
