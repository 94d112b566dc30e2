"""Outbound webhooks to tenant apps: endpoints, signed deliveries (Standard Webhooks), retries.

The tables live in app/webhooks/models.py (WebhookEndpoint, WebhookDelivery, WebhookDeliveryAttempt);
this package owns what is done with them. See docs/outbound-webhooks.md.
"""
