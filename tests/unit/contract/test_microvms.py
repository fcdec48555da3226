"""MicroVM models: Run defaults left to the API, token requests, empty responses."""

from __future__ import annotations

import ember.contract as c


def test_run_needs_only_an_image() -> None:
    request = c.parse_request(c.RunMicrovmRequest, {"imageIdentifier": "web"})
    assert request.maximumDurationInSeconds is None and request.idlePolicy is None
    assert request.to_wire() == {"imageIdentifier": "web"}


def test_run_payload_counts_utf8_bytes_not_characters() -> None:
    request = c.parse_request(c.RunMicrovmRequest, {"imageIdentifier": "w", "runHookPayload": "é" * 8192})
    assert len((request.runHookPayload or "").encode()) == c.bounds.MAX_RUN_HOOK_PAYLOAD_BYTES


def test_shell_token_request() -> None:
    request = c.parse_request(
        c.CreateMicrovmShellAuthTokenRequest, {"microvmIdentifier": "mvm-" + "1" * 32, "expirationInMinutes": 60}
    )
    assert request.expirationInMinutes == 60


def test_empty_responses_are_empty_objects() -> None:
    for model in (c.SuspendMicrovmResponse, c.ResumeMicrovmResponse, c.TerminateMicrovmResponse):
        assert model().to_wire() == {}
