"""The tenant admin console: server-rendered pages at /console over the same services as /v1."""
