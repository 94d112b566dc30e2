"""The outbox kind of the routing job, named apart from the accept service (app/notify/service.py), which
imports the API's auth and with it Litestar: the workers import the kind, not the web framework."""

ROUTE = "notification.route"
