"""The error responses in the OpenAPI document: every error is RFC 9457 problem+json.

Litestar documents only a handler's success code and its own 400 shape, which the app never sends
(app/core/problems.py answers every error). This puts the real shape, and the codes each operation
can answer, into the document that clients and `make fuzz` read.
"""

from __future__ import annotations

from litestar.openapi.spec import OpenAPI, OpenAPIMediaType, OpenAPIResponse, Reference, Schema
from litestar.openapi.spec.enums import OpenAPIType

from app.core.problems import PROBLEM_MEDIA_TYPE

_STRING, _INTEGER = Schema(type=OpenAPIType.STRING), Schema(type=OpenAPIType.INTEGER)
PROBLEM = Schema(
    type=OpenAPIType.OBJECT,
    description="RFC 9457 problem details",
    required=["type", "title", "status"],
    properties={
        "type": Schema(type=OpenAPIType.STRING, format="uri"),  # type: ignore[arg-type]
        "title": _STRING,
        "status": _INTEGER,
        "detail": _STRING,
        "instance": _STRING,
        "request_id": _STRING,
        "errors": Schema(
            type=OpenAPIType.ARRAY,
            items=Schema(type=OpenAPIType.OBJECT, properties={"pointer": _STRING, "detail": _STRING}),
        ),
    },
)
_WHY = {
    "400": "Malformed request (body not JSON, bad parameter)",
    "401": "Missing or invalid credential",
    "403": "Valid credential without the scope, a test key where only live keys may go, or the tenant is suspended",
    "404": "No such object (another tenant's objects are 404 too)",
    "422": "Validation failed; `errors` points at each field (JSON pointers)",
    "429": "Rate limited; see Retry-After",
    "503": "A dependency is down, the database is busy (a lock held too long), or the process is at its concurrency limit; see Retry-After",
    "default": "Any other error, as problem+json",
}


def _problem(code: str) -> OpenAPIResponse:
    return OpenAPIResponse(
        description=_WHY[code],
        content={PROBLEM_MEDIA_TYPE: OpenAPIMediaType(schema=Reference(ref="#/components/schemas/Problem"))},
    )


def document_problems(openapi: OpenAPI) -> None:
    openapi.components.schemas = {**(openapi.components.schemas or {}), "Problem": PROBLEM}
    for path, item in (openapi.paths or {}).items():
        for operation in (item.get, item.put, item.post, item.delete, item.patch):
            if operation is None:
                continue
            responses = operation.responses = dict(operation.responses or {})
            codes = ["503", "default"]
            if operation.parameters or operation.request_body:
                codes += ["400", "422"]
            if "{" in path:
                codes.append("404")
            if operation.security:
                codes += ["401", "403"]
                if any("ApiKey" in requirement for requirement in operation.security):
                    codes.append("429")
            for code in sorted(codes):
                responses[code] = _problem(code)
