"""Routing reads a template's approval with the template row: no query of its own (docs/templates.md)."""

from __future__ import annotations

import uuid

from sqlalchemy import event, select

from app.core.db import get_engine, session_factory
from app.notify import pipeline
from app.notify.models import Notification
from tenants.templates.cache import contents
from tests.support.gateway import notify, wired_tenant


async def test_routing_an_unapproved_template_reads_no_content_table(client, emulator, gateway):
    t = await wired_tenant(client, emulator, gateway)
    emulator.review_template(t.content_sid, approval="rejected", rejection_reason="INVALID_FORMAT")
    assert (await client.post("/v1/templates/sync", headers=t.admin)).status_code == 200
    nid = await notify(client, t)  # for its contact; a worker of the session may route this one
    statements: list[str] = []

    def seen(conn, cursor, statement, *args):
        statements.append(statement)

    engine = get_engine().sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        contents.invalidate((uuid.UUID(t.id), "order_shipped"))  # the template is read from the database
        async with session_factory()() as s:
            accepted = (await s.scalars(select(Notification).where(Notification.id == uuid.UUID(nid)))).one()
            n = Notification(  # a twin no worker can see (never committed), routed by hand
                tenant_id=accepted.tenant_id,
                contact_id=accepted.contact_id,
                recipient=accepted.recipient,
                template_key=accepted.template_key,
                variables=accepted.variables,
                channels=accepted.channels,
                metadata_={},
            )
            s.add(n)
            await s.flush()
            statements.clear()
            await pipeline.route(s, n)
            decided = {(d.step, d.result) for d in pipeline.unit_of(s).rows if hasattr(d, "step")}
            await s.rollback()
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert ("template", "rejected") in decided and ("fallback", "email") in decided
    assert any("FROM templates" in q for q in statements)
    assert not any("twilio_content" in q for q in statements), [q for q in statements if "twilio_content" in q]
