"""Client API: what the caller's tenant sent and is billed for, per month (app/usage/service.py)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.params import Parameter, QueryParameter

from app.core.db import utcnow
from app.core.deps import DbSession
from app.usage import service
from app.usage.schemas import UsageMonth, UsageOut, UsageRow
from tenants.auth import Caller, require_scope


class UsageController(Controller):
    path = "/v1/usage"
    tags = ["usage"]
    security = [{"ApiKey": []}]

    @get(
        "/",
        # Counts only, of the caller's own environment: a test key reads its simulated sends.
        dependencies={"principal": require_scope("notifications:read", test_keys=True)},
        summary="Accepted sends per month (UTC) by channel, template category and recipient country",
        description="`month=YYYY-MM` (default: this month), or `from=YYYY-MM` and/or `to=YYYY-MM` (inclusive, "
        f"at most {service.MAX_MONTHS} months). Counted: {service.COUNTED}. Category: the template's category "
        "when the template carries one, else `unknown`; `session` for messages inside the 24 h window; `none` for "
        "email. Country: the recipient phone number's ISO country, or `unknown`.",
    )
    async def read(
        self,
        principal: Caller,
        db_session: DbSession,
        month: Annotated[str | None, Parameter(max_length=7)] = None,
        from_: Annotated[str | None, QueryParameter(name="from", max_length=7)] = None,
        to: Annotated[str | None, Parameter(max_length=7)] = None,
    ) -> UsageOut:
        wanted = service.months(month, from_, to, utcnow())
        found = []
        for m in wanted:
            counts = await service.month_counts(db_session, principal.tenant, principal.environment, m)
            rows = [UsageRow(**r) for r in counts.pop("rows")]
            found.append(UsageMonth(**counts, rows=rows))
        return UsageOut(environment=principal.environment, counted=service.COUNTED, months=found)


ROUTES = [UsageController]
