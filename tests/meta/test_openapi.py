import json
from pathlib import Path

from app.cli import openapi_document

COMMITTED = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"


def test_committed_openapi_matches_the_app():
    generated = json.loads(json.dumps(openapi_document(), sort_keys=True))
    committed = json.loads(COMMITTED.read_text())
    assert generated == committed, "openapi/openapi.json is stale: run `notifygw openapi`"


async def test_served_openapi_matches_the_app(client):
    served = (await client.get("/schema/openapi.json")).json()
    assert served["paths"].keys() == json.loads(COMMITTED.read_text())["paths"].keys()
    assert served["openapi"].startswith("3.1")
