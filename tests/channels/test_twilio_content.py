"""Twilio's Content API (GET /v1/ContentAndApprovals): the adapter through the official SDK, against the
emulator, and the emulator's answers against Twilio's own spec."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jsonschema
import pytest

from channels import twilio_content
from channels.base import ChannelError, FailureClass, TwilioCredentials
from channels.twilio_content import TwilioContent, approval_of, item_of
from channels.twilio_whatsapp import TwilioWhatsApp
from tests.support.providers import openapi_to_jsonschema

SPEC = Path(__file__).resolve().parents[1] / "fixtures" / "twilio_content_v1_content_and_approvals.json"


def creds_of(account: dict[str, Any], *, api_key: bool = False) -> TwilioCredentials:
    if api_key:
        return TwilioCredentials(account["account_sid"], "", account["api_key_sid"], account["api_key_secret"])
    return TwilioCredentials(account["account_sid"], account["auth_token"])


@pytest.fixture
async def content(emulator: Any) -> Any:
    twilio = TwilioWhatsApp(base_url=emulator.base_url, timeout=5)
    yield TwilioContent(twilio)
    await twilio.aclose()


@pytest.fixture
def account(emulator: Any) -> dict[str, Any]:
    return emulator.create_account(friendly_name="content tests")


async def test_lists_every_page_of_the_accounts_own_templates(
    emulator: Any, content: TwilioContent, account: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(twilio_content, "PAGE_SIZE", 2)  # five templates: three pages, followed by next_page_url
    mine = [emulator.create_template(account["account_sid"], ["1", "2"]) for _ in range(5)]
    other = emulator.create_account()
    emulator.create_template(other["account_sid"], ["1"])  # another account's: never listed
    items = await content.contents(creds_of(account, api_key=True))
    assert [i.sid for i in items] == mine
    first = items[0]
    assert (first.approval_status, first.twilio_status, first.category, first.language) == (
        "approved",
        "approved",
        "UTILITY",
        "en",
    )
    assert list(first.variables) == ["1", "2"] and first.types == ["twilio/text"]
    assert first.account_sid == account["account_sid"]


async def test_every_approval_state_and_category_set_in_the_emulator_is_reported(
    emulator: Any, content: TwilioContent, account: dict[str, Any]
) -> None:
    wanted = {
        "approved": ("UTILITY", "approved"),
        "pending": ("MARKETING", "pending"),
        "received": ("MARKETING", "pending"),
        "rejected": ("AUTHENTICATION", "rejected"),
        "unsubmitted": ("UTILITY", "unsubmitted"),
        "paused": ("MARKETING", "paused"),
        "disabled": ("TRANSACTIONAL", "disabled"),
        "in_appeal": ("UTILITY", "unknown"),  # a status we do not know: kept raw, never sendable
    }
    sids = {}
    for status, (category, _) in wanted.items():
        sid = emulator.create_template(account["account_sid"], [])
        emulator.review_template(sid, approval=status, category=category, rejection_reason="too vague")
        sids[sid] = status
    items = {i.sid: i for i in await content.contents(creds_of(account))}
    for sid, status in sids.items():
        category, ours = wanted[status]
        item = items[sid]
        assert (item.twilio_status, item.approval_status) == (status, ours)
        if status != "unsubmitted":  # an unsubmitted template has no category yet
            assert item.category == category
        assert item.rejection_reason == "too vague"


async def test_refused_credentials_are_bad_credentials(content: TwilioContent, account: dict[str, Any]) -> None:
    with pytest.raises(ChannelError) as caught:
        await content.contents(TwilioCredentials(account["account_sid"], "wrong"))
    assert caught.value.failure is FailureClass.BAD_CREDENTIALS and caught.value.http_status == 401


async def test_unreachable_content_api_is_transient() -> None:
    twilio = TwilioWhatsApp(base_url="http://127.0.0.1:9", timeout=2)  # nothing listens on port 9
    try:
        with pytest.raises(ChannelError) as caught:
            await TwilioContent(twilio).contents(TwilioCredentials("AC" + "1" * 32, "token"))
        assert caught.value.failure is FailureClass.TRANSIENT
    finally:
        await twilio.aclose()


def test_the_emulators_pages_follow_twilios_spec(emulator: Any, account: dict[str, Any]) -> None:
    spec = json.loads(SPEC.read_text())
    components = spec["components"]["schemas"]
    response = spec["paths"]["/v1/ContentAndApprovals"]["get"]["responses"]["200"]["content"]["application/json"]
    schema = openapi_to_jsonschema(response["schema"], components)
    item_fields = set(components["content.v1.content_and_approvals"]["properties"])
    for _ in range(3):
        emulator.create_template(account["account_sid"], ["1"])
    auth = (account["account_sid"], account["auth_token"])
    url: str | None = "/v1/ContentAndApprovals?PageSize=2"
    pages = []
    while url:
        r = emulator.http.get(url.replace("https://content.twilio.com", ""), auth=auth)
        assert r.status_code == 200, r.text
        body = r.json()
        jsonschema.Draft202012Validator(schema).validate(body)
        assert set(body["meta"]) == set(schema["properties"]["meta"]["properties"])
        assert all(set(item) == item_fields for item in body["contents"])
        assert body["meta"]["key"] == "contents" and body["meta"]["url"].startswith("https://content.twilio.com/v1/")
        pages.append(body)
        url = body["meta"]["next_page_url"]
    assert [len(p["contents"]) for p in pages] == [2, 1]
    assert pages[0]["meta"]["previous_page_url"] is None and pages[1]["meta"]["previous_page_url"]
    assert emulator.http.get("/v1/ContentAndApprovals", auth=(account["account_sid"], "no")).status_code == 401
    assert emulator.http.get("/v1/ContentAndApprovals?PageSize=0", auth=auth).status_code == 400


def test_control_api_refuses_bad_reviews(emulator: Any, account: dict[str, Any]) -> None:
    sid = emulator.create_template(account["account_sid"], [])
    path = f"/_emulator/twilio/templates/{sid}"
    assert emulator.http.patch(path, json={"approval": "Approved!"}).status_code == 422
    assert emulator.http.patch(path, json={"category": "utility"}).status_code == 422
    assert emulator.http.patch(path, json={"colour": "red"}).status_code == 422
    assert emulator.http.patch("/_emulator/twilio/templates/HX" + "0" * 32, json={}).status_code == 404
    assert emulator.http.get(path).json()["approval"] == "approved"


def test_statuses_map_onto_ours_and_a_nested_whatsapp_approval_is_read() -> None:
    assert approval_of(None) == approval_of("") == "unsubmitted"
    assert approval_of("APPROVED") == "approved" and approval_of("something_new") == "unknown"

    instance = SimpleNamespace(
        sid="HX" + "a" * 32,
        account_sid="AC" + "a" * 32,
        friendly_name="x",
        language="pt_BR",
        variables={"1": "name"},
        types={"twilio/text": {"body": "Oi {{1}}"}},
        approval_requests={"whatsapp": {"status": "paused", "category": "marketing"}},
    )
    item = item_of(instance)
    assert (item.approval_status, item.category, item.language) == ("paused", "MARKETING", "pt_BR")
