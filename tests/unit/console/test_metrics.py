"""``GET /ember/metrics``: state counts over time and lifecycle durations from stored transitions, per account."""

from __future__ import annotations

from datetime import UTC, datetime
from unittest import mock

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from ember.console.metrics import STATES, Event, summarize
from ember.contract.enums import MicrovmState
from ember.store import transitions
from tests.unit.api.conftest import ACCOUNT_A, ACCOUNT_B, KEY_A, REGION
from tests.unit.console.conftest import T0, Console, csrf
from tests.unit.store.conftest import make_image, make_microvm

S = MicrovmState


def _at(offset_s: float) -> datetime:
    return datetime.fromtimestamp(T0 + offset_s, UTC)


def _seed(console: Console) -> dict[str, str]:
    """Account A: vm1 launched, suspended and resumed in the window; vm2 running since before it, terminated in it;
    vm3 launched just now; vm4 still PENDING. Account B: one launch (must never show)."""
    image, version = make_image(console.store, "web", ACCOUNT_A)
    image_b, version_b = make_image(console.store, "web", ACCOUNT_B)
    ids = {
        "vm1": make_microvm(console.store, image, version, at=_at(-3000)).id,
        "vm2": make_microvm(console.store, image, version, at=_at(-7200)).id,
        "vm3": make_microvm(console.store, image, version, at=_at(-30)).id,
        "vm4": make_microvm(console.store, image, version, at=_at(-10)).id,
        "vmB": make_microvm(console.store, image_b, version_b, account=ACCOUNT_B, at=_at(-2000)).id,
    }
    moves = [
        ("vm1", S.RUNNING, -2998),
        ("vm1", S.SUSPENDING, -1020),
        ("vm1", S.SUSPENDED, -1016.5),
        ("vm1", S.RUNNING, -500),
        ("vm2", S.RUNNING, -7195),
        ("vm2", S.TERMINATING, -100),
        ("vm2", S.TERMINATED, -99),
        ("vm3", S.RUNNING, -29.75),
        ("vmB", S.RUNNING, -1990),
    ]
    with console.store.write() as session:
        for name, to, offset in moves:
            transitions.transition(session, ids[name], to, now=_at(offset))
    return ids


def _counts(**nonzero: int) -> dict[str, int]:
    return {state: nonzero.get(state, 0) for state in STATES}


async def test_metrics_are_computed_from_the_callers_transitions(console: Console) -> None:
    ids = _seed(console)
    body = await console.sign_in()
    response = await console.client.get("/ember/metrics", params={"windowSeconds": "3600"}, headers=csrf(body))
    assert response.status == 200
    doc = await response.json()
    assert (doc["windowSeconds"], doc["stepSeconds"], len(doc["states"])) == (3600, 60, 61)
    states = doc["states"]
    assert states[0] == {"time": "2025-09-09T11:00:00Z", "counts": _counts(RUNNING=1)}
    assert states[43] == {"time": "2025-09-09T11:43:00Z", "counts": _counts(RUNNING=1, SUSPENDING=1)}
    assert states[44]["counts"] == _counts(RUNNING=1, SUSPENDED=1)
    assert states[59]["counts"] == _counts(RUNNING=1, TERMINATED=1)
    assert states[60] == {"time": "2025-09-09T12:00:00Z", "counts": _counts(PENDING=1, RUNNING=2, TERMINATED=1)}
    assert doc["launchSeconds"] == {
        "count": 2,
        "p50": 0.25,
        "p90": 2.0,
        "max": 2.0,
        "recent": [
            {"microvmId": ids["vm3"], "seconds": 0.25, "at": "2025-09-09T11:59:30Z"},
            {"microvmId": ids["vm1"], "seconds": 2.0, "at": "2025-09-09T11:10:02Z"},
        ],
    }
    assert doc["suspendSeconds"] == {
        "count": 1,
        "p50": 3.5,
        "p90": 3.5,
        "max": 3.5,
        "recent": [{"microvmId": ids["vm1"], "seconds": 3.5, "at": "2025-09-09T11:43:03Z"}],
    }
    assert doc["resumeSeconds"] == {"count": 0, "p50": None, "p90": None, "max": None, "recent": []}


async def test_the_default_window_is_an_hour_and_a_week_has_61_points(console: Console) -> None:
    body = await console.sign_in()
    default = await (await console.client.get("/ember/metrics", headers=csrf(body))).json()
    assert (default["windowSeconds"], len(default["states"])) == (3600, 61)
    week = await (await console.client.get("/ember/metrics?windowSeconds=604800", headers=csrf(body))).json()
    assert (week["stepSeconds"], len(week["states"])) == (10080, 61)
    smallest = await (await console.client.get("/ember/metrics?windowSeconds=60", headers=csrf(body))).json()
    assert (smallest["stepSeconds"], len(smallest["states"])) == (1, 61)
    odd = await (await console.client.get("/ember/metrics?windowSeconds=100", headers=csrf(body))).json()
    assert (odd["stepSeconds"], len(odd["states"]), odd["states"][0]["time"]) == (2, 51, "2025-09-09T11:58:20Z")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("59", "windowSeconds: 59 is less than the minimum 60"),
        ("604801", "windowSeconds: 604801 is greater than the maximum 604800"),
        ("-5", "windowSeconds: -5 is less than the minimum 60"),
        ("hour", "windowSeconds: 'hour' is not an integer"),
        ("", "windowSeconds: '' is not an integer"),
    ],
)
async def test_window_bounds_are_validation_errors(console: Console, value: str, message: str) -> None:
    body = await console.sign_in()
    response = await console.client.get("/ember/metrics", params={"windowSeconds": value}, headers=csrf(body))
    assert (response.status, response.headers["x-amzn-ErrorType"]) == (400, "ValidationException")
    assert (await response.json())["message"] == message


async def test_metrics_need_credentials_and_accept_sigv4(console: Console) -> None:
    refused = await console.client.get("/ember/metrics")
    assert (refused.status, refused.headers["x-amzn-ErrorType"]) == (403, "AccessDeniedException")
    _seed(console)
    url = str(console.server.make_url("/ember/metrics?windowSeconds=3600"))
    request = AWSRequest(method="GET", url=url, data=b"")
    with mock.patch("botocore.auth.get_current_datetime", return_value=datetime.now(UTC)):
        SigV4Auth(Credentials(*KEY_A), "lambda", REGION).add_auth(request)
    signed = await console.client.get("/ember/metrics?windowSeconds=3600", headers=dict(request.headers.items()))
    assert signed.status == 200
    assert (await signed.json())["states"][-1]["counts"]["RUNNING"] == 2


def test_percentiles_are_nearest_rank() -> None:
    history = {
        f"vm{i}": [Event(f"vm{i}", None, "PENDING", 100.0), Event(f"vm{i}", "PENDING", "RUNNING", 100.0 + i)]
        for i in range(1, 11)
    }
    doc = summarize(history, now=1000.0, window_s=3600)
    launch = doc["launchSeconds"]
    assert (launch["count"], launch["p50"], launch["p90"], launch["max"]) == (10, 5.0, 9.0, 10.0)
    assert [item["microvmId"] for item in launch["recent"]] == [f"vm{i}" for i in range(10, 0, -1)]


def test_moves_outside_the_window_or_from_another_state_are_not_durations() -> None:
    history = {
        "old": [Event("old", None, "PENDING", 0.0), Event("old", "PENDING", "RUNNING", 5.0)],
        "failed": [
            Event("failed", None, "PENDING", 4000.0),
            Event("failed", "PENDING", "TERMINATING", 4001.0),
            Event("failed", "TERMINATING", "TERMINATED", 4002.0),
        ],
        "retry": [
            Event("retry", "RUNNING", "SUSPENDING", 4000.0),
            Event("retry", "SUSPENDING", "RUNNING", 4001.0),
            Event("retry", "RUNNING", "SUSPENDING", 4010.0),
            Event("retry", "SUSPENDING", "SUSPENDED", 4012.5),
        ],
    }
    doc = summarize(history, now=4100.0, window_s=600)
    assert doc["launchSeconds"]["count"] == 0
    assert (doc["suspendSeconds"]["count"], doc["suspendSeconds"]["max"]) == (1, 2.5)
    assert doc["states"][-1]["counts"] == _counts(RUNNING=1, SUSPENDED=1, TERMINATED=1)
