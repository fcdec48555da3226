"""Pagination tokens: opaque, round-trip the sort key, and refuse anything Ember did not issue."""

from __future__ import annotations

import base64

import pytest

from ember.errors import InvalidInput
from ember.store.paging import decode_token, encode_token
from tests.unit.store.conftest import T0


@pytest.mark.parametrize("row_id", ["mvm-" + "a" * 32, 42])
def test_token_round_trips(row_id: str | int) -> None:
    token = encode_token(T0, row_id)
    assert "=" not in token and "{" not in token
    assert decode_token(token) == (T0, row_id)


@pytest.mark.parametrize(
    "token",
    [
        "garbage!",
        base64.urlsafe_b64encode(b"[]").decode(),
        base64.urlsafe_b64encode(b'{"v":2,"c":"2025-01-01T00:00:00+00:00","i":1}').decode(),
        base64.urlsafe_b64encode(b'{"v":1,"c":"2025-01-01T00:00:00","i":1}').decode(),
        base64.urlsafe_b64encode(b'{"v":1,"c":"yesterday","i":1}').decode(),
        base64.urlsafe_b64encode(b'{"v":1,"c":"2025-01-01T00:00:00+00:00","i":[1]}').decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
)
def test_foreign_tokens_are_invalid_input(token: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        decode_token(token)
    assert caught.value.field == "nextToken"
