"""What `notifygw dev` prepares on first start and prints for a newcomer.

Dev only: the demo tenant's keys are kept in ./.notifygw/demo.json (mode 0600) so that every start
can print them again; production never stores a key in clear.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from app.core.config import DEV_HOME, Settings

DEMO_FILE = DEV_HOME / "demo.json"


def _save(path: Path, data: dict[str, Any]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)


async def _create_demo() -> dict[str, Any]:
    from app.core.db import dispose_engine, session_factory
    from tenants.accounts import service as accounts
    from tenants.api_keys import service as keys
    from tenants.auth import OPERATOR

    try:
        async with session_factory()() as session:
            tenant = await accounts.create_tenant(session, name="Demo", slug="demo", actor=OPERATOR)
            admin = await keys.create_key(session, tenant.id, name="demo admin", scopes=["admin"], environment="live", actor=OPERATOR)
            send = await keys.create_key(session, tenant.id, name="demo sender",
                                         scopes=["notifications:send", "notifications:read"], environment="live", actor=OPERATOR)
            await session.commit()
            return {"tenant_id": str(tenant.id), "admin_key": admin.key, "send_key": send.key}
    finally:
        await dispose_engine()


def ensure_demo() -> dict[str, Any]:
    if DEMO_FILE.exists():
        return json.loads(DEMO_FILE.read_text())
    demo = asyncio.run(_create_demo())
    _save(DEMO_FILE, demo)
    return demo


def bootstrap(settings: Settings) -> str:
    demo = ensure_demo()
    base = settings.public_base_url
    return "\n".join([
        "",
        f"notifygw dev is running at {base}",
        f"  database: {settings.database_url}",
        "  queue:    in-process (Dramatiq StubBroker)",
        f"  operator token: in {DEV_HOME / 'operator_token'}",
        "",
        f"Demo tenant {demo['tenant_id']}",
        f"  admin key: {demo['admin_key']}",
        f"  send key:  {demo['send_key']}",
        "",
        "Try:",
        f"  curl -s {base}/readyz",
        f"  curl -s -H 'Authorization: Bearer {demo['admin_key']}' {base}/v1/audit-log",
        f"  open {base}/schema for the API reference",
        "",
    ])
