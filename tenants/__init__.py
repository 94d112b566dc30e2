"""Tenants: accounts, API keys, provider credentials, templates, routing, contacts and consent, audit."""
