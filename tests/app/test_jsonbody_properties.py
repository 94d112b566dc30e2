"""Properties of app.core.jsonbody, the one decoder of JSON bodies (issue 11, section 7)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.errors import ValidationFailed
from app.core.jsonbody import MAX_DEPTH, MalformedJson, decode
from tests.fuzz.test_hostile_bodies import deep_documents, documents_with_one_nul, json_values


@given(json_values)
def test_a_clean_document_decodes_to_itself(value):
    assert decode(json.dumps(value).encode()) == value


@given(documents_with_one_nul())
def test_one_nul_anywhere_is_refused_with_its_pointer(case):
    doc, pointer = case
    with pytest.raises(ValidationFailed) as caught:
        decode(json.dumps(doc).encode())
    assert caught.value.errors == [{"pointer": pointer, "detail": caught.value.detail}]


@given(deep_documents())
def test_past_the_depth_bound_is_malformed(body):
    with pytest.raises(MalformedJson):
        decode(body)


@given(st.integers(0, MAX_DEPTH - 1), st.sampled_from(["[", '{"k":']))
def test_within_the_depth_bound_is_accepted(depth, opener):
    body = opener * depth + "0" + "".join("]" if opener == "[" else "}" for _ in range(depth))
    decode(body.encode())


def test_an_escaped_backslash_before_u0000_is_not_a_nul():
    assert decode(rb'{"a": "\\u0000"}') == {"a": "\\u0000"}
