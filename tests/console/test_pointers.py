"""The console maps a 422's JSON pointers to form fields: the pointers are the API's own."""

from __future__ import annotations

import msgspec
import pytest

from app.console.common import field_errors, pointer_of
from app.console.routing import field_for
from tenants.routing.schemas import RoutingPolicyDoc


@pytest.mark.parametrize(
    ("doc", "pointer", "field"),
    [
        ({"whatsapp": {"sender_rate_per_second": 0}}, "/whatsapp/sender_rate_per_second", "sender_rate_per_second"),
        ({"default_country": "usa"}, "/default_country", "default_country"),
        ({"whatsapp": {"by_country": {"DE": "x"}}}, "/whatsapp/by_country/*", "by_country"),
        ({"inbound": {"stop_words": [" x"]}}, "/inbound/stop_words/0", "stop_words"),
        ({"fallback": {"email_on": ["nope"]}}, "/fallback/email_on/0", "email_on"),
        ({"nope": 1}, "/nope", ""),
    ],
)
def test_msgspec_errors_become_the_apis_pointers_and_then_fields(doc: dict, pointer: str, field: str) -> None:
    with pytest.raises(msgspec.ValidationError) as caught:
        msgspec.convert(doc, RoutingPolicyDoc)
    assert pointer_of(caught.value) == pointer
    assert field_for(pointer) == field
    ((_, message),) = field_errors(caught.value).items()
    assert " - at `" not in message
