from __future__ import annotations


async def test_healthz(client):
    r = await client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


async def test_readyz_reports_database_and_broker(client):
    r = await client.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ready", "database": "ok", "broker": "ok"}


async def test_request_id_is_echoed_or_generated(client):
    r = await client.get("/healthz", headers={"X-Request-Id": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    generated = (await client.get("/healthz")).headers["x-request-id"]
    assert len(generated) == 32
    # A hostile id (header injection, huge) is replaced, not echoed.
    r = await client.get("/healthz", headers={"X-Request-Id": "x" * 500})
    assert r.headers["x-request-id"] != "x" * 500


async def test_unknown_route_is_problem_json(client):
    r = await client.get("/nope")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == 404 and body["type"].endswith("/not-found") and body["instance"] == "/nope"


async def test_wrong_method_is_problem_json(client):
    r = await client.delete("/healthz")
    assert r.status_code == 405
    assert r.headers["content-type"].startswith("application/problem+json")
