"""Every Dramatiq actor, in one list: ACTORS.

`app.core.queue.declare(ACTORS)` binds them to the broker at start-up (app/asgi.py, app/worker.py,
the CLI commands that send jobs, tests/conftest.py). Defining an actor binds nothing, so no module
has to be imported before another; an actor left out of this list is refused when a job for it is
deferred, and tests/meta/test_registries.py fails.

The outbox finds the actor of a kind of work among these (app/outbox/service.py `find_actor`).
"""

from __future__ import annotations

from app.core.queue import Actor
from app.endpoints.tasks import deliver_webhook
from app.notify.tasks import check_whatsapp, route_notification, send_email, send_whatsapp
from app.webhooks.tasks import drain_events, process_event

ACTORS: list[Actor] = [
    route_notification,  # notification.route, queue notifications
    send_whatsapp,  # attempt.send_whatsapp, queue whatsapp
    send_email,  # attempt.send_email, queue email
    check_whatsapp,  # attempt.check_whatsapp, queue whatsapp
    process_event,  # event.process, queue webhooks
    drain_events,  # nudge: a batch of event.process, queue webhooks
    deliver_webhook,  # webhook.deliver, queue endpoint_deliveries
]
