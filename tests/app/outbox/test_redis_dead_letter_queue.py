"""Dramatiq's dead-letter queue in Redis keeps nothing: a message it rejects is deleted from `.XQ`
at once (the database's dead letter replaces it)."""

from __future__ import annotations

import uuid

import dramatiq

from app.core.queue import get_broker
from tests.conftest import TEST_DB_NAME


def test_a_rejected_message_leaves_no_copy_in_the_xq(redis_client):
    broker = get_broker()
    queue = f"xq_probe_{uuid.uuid4().hex[:8]}"  # a queue no worker consumes
    secret = "+14155550123 ava@example.com"
    message = dramatiq.Message(
        queue_name=queue, actor_name="probe", args=("id",), kwargs={}, options={"traceback": f"ValueError: {secret}"}
    )
    message.options["redis_message_id"] = message.message_id
    broker.do_enqueue(queue, message.message_id, message.encode())  # the broker's own enqueue script
    consumer = broker.consume(queue, prefetch=1, timeout=1000)
    try:
        received = next(m for m in consumer if m is not None)
        received.fail()
        consumer.nack(received)
        assert redis_client.zcard(f"{TEST_DB_NAME}:{queue}.XQ") == 1  # what Dramatiq alone would keep for a week
        broker.emit_after("nack", received)  # what dramatiq's Worker does right after the nack
    finally:
        consumer.close()
    assert redis_client.zcard(f"{TEST_DB_NAME}:{queue}.XQ") == 0
    assert not redis_client.hgetall(f"{TEST_DB_NAME}:{queue}.XQ.msgs")
