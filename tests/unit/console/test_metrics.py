"""``GET /ember/metrics`` (``ember.api.metrics``): state counts over time and lifecycle durations from stored
transitions, per account. Served by the console's application here, as the pages call it with a session."""

from __future__ import annotations

from datetime import UTC, datetime
from unittest import mock

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from ember.api.metrics import STATES, Event, MetricsResponse, summarize, with_resume_starts
from ember.api.openapi import openapi_document
from ember.contract.enums import MicrovmState
from ember.store import transitions
from tests.unit.api.conftest import ACCOUNT_A, ACCOUNT_B, KEY_A, KEY_B, REGION
from tests.unit.console.conftest import T0, Console, csrf
from tests.unit.store.conftest import make_image, make_microvm

S = MicrovmState


def _at(offset_s: float) -> datetime:
    return datetime.fromtimestamp(T0 + offset_s, UTC)


def _seed(console: Console) -> dict[str, str]:
    """Account A: vm1 launched, suspended and resumed (in 3.25 s) in the window; vm2 running since before it,
    terminated in it; vm3 launched just now; vm4 still PENDING. Account B: a launch and a slow resume (must never
    show)."""
    image, version = make_image(console.store, "web", ACCOUNT_A)
    image_b, version_b = make_image(console.store, "web", ACCOUNT_B)
    ids = {
        "vm1": make_microvm(console.store, image, version, at=_at(-3000)).id,
        "vm2": make_microvm(console.store, image, version, at=_at(-7200)).id,
        "vm3": make_microvm(console.store, image, version, at=_at(-30)).id,
        "vm4": make_microvm(console.store, image, version, at=_at(-10)).id,
        "vmB": make_microvm(console.store, image_b, version_b, account=ACCOUNT_B, at=_at(-2000)).id,
    }
    moves: list[tuple[str, MicrovmState, float, float | None]] = [
        ("vm1", S.RUNNING, -2998, None),
        ("vm1", S.SUSPENDING, -1020, None),
        ("vm1", S.SUSPENDED, -1016.5, None),
        ("vm1", S.RUNNING, -500, -503.25),
        ("vm2", S.RUNNING, -7195, None),
        ("vm2", S.TERMINATING, -100, None),
        ("vm2", S.TERMINATED, -99, None),
        ("vm3", S.RUNNING, -29.75, None),
        ("vmB", S.RUNNING, -1990, None),
        ("vmB", S.SUSPENDING, -1500, None),
        ("vmB", S.SUSPENDED, -1499, None),
        ("vmB", S.RUNNING, -1000, -1100),
    ]
    with console.store.write() as session:
        for name, to, offset, started in moves:
            started_at = None if started is None else _at(started)
            transitions.transition(session, ids[name], to, now=_at(offset), started_at=started_at)
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
    assert doc["resumeSeconds"] == {
        "count": 1,
        "p50": 3.25,
        "p90": 3.25,
        "max": 3.25,
        "recent": [{"microvmId": ids["vm1"], "seconds": 3.25, "at": "2025-09-09T11:51:40Z"}],
    }
    assert all(point["counts"]["RESUMING"] == 0 for point in states)  # no point falls inside the 3.25 s


async def test_another_accounts_resumes_never_show(console: Console) -> None:
    _seed(console)
    body = await console.sign_in(KEY_B)
    doc = await (await console.client.get("/ember/metrics", headers=csrf(body))).json()
    assert doc["resumeSeconds"]["count"] == 1 and doc["resumeSeconds"]["max"] == 100.0
    assert doc["launchSeconds"]["count"] == 1
    resuming = [point["time"] for point in doc["states"] if point["counts"]["RESUMING"]]
    assert resuming == [f"2025-09-09T11:{minute}:00Z" for minute in (42, 43)]
    assert all(sum(point["counts"].values()) <= 1 for point in doc["states"])


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


async def test_metrics_is_an_api_extension_and_answers_its_documented_shape(console: Console) -> None:
    operation = openapi_document()["paths"]["/ember/metrics"]["get"]
    assert (operation["operationId"], operation["x-ember-extension"]) == ("GetMetrics", True)
    assert [(p["name"], p["in"]) for p in operation["parameters"]] == [("windowSeconds", "query")]
    _seed(console)
    body = await console.sign_in()
    doc = await (await console.client.get("/ember/metrics", headers=csrf(body))).json()
    assert MetricsResponse.model_validate(doc).model_dump() == doc
    assert doc["suspendSeconds"]["p50"] == 3.5 and doc["launchSeconds"]["recent"]
    minute = await (await console.client.get("/ember/metrics?windowSeconds=60", headers=csrf(body))).json()
    assert minute["resumeSeconds"] == {"count": 0, "p50": None, "p90": None, "max": None, "recent": []}
    assert MetricsResponse.model_validate(minute).model_dump() == minute


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


def test_a_recorded_resume_start_reads_as_resuming_until_running() -> None:
    events = [
        Event("vm", None, "PENDING", 3500.0),
        Event("vm", "PENDING", "RUNNING", 3501.0),
        Event("vm", "RUNNING", "SUSPENDING", 3600.0),
        Event("vm", "SUSPENDING", "SUSPENDED", 3602.0),
        Event("vm", "SUSPENDED", "RUNNING", 3790.0, started_at=3650.0),
    ]
    doc = summarize({"vm": events}, now=3800.0, window_s=300)
    assert doc["resumeSeconds"]["recent"] == [{"microvmId": "vm", "seconds": 140.0, "at": "1970-01-01T01:03:10Z"}]
    by_time = {point["time"][11:19]: point["counts"] for point in doc["states"]}
    assert by_time["00:59:55"] == _counts(RUNNING=1)
    assert by_time["01:00:35"] == _counts(SUSPENDED=1)
    assert by_time["01:00:50"] == by_time["01:03:05"] == _counts(RESUMING=1)
    assert by_time["01:03:20"] == _counts(RUNNING=1)


def test_resume_starts_keep_the_timeline_ordered_and_leave_other_moves_alone() -> None:
    early = [
        Event("vm", "SUSPENDING", "SUSPENDED", 100.0),
        Event("vm", "SUSPENDED", "RUNNING", 110.0, started_at=90.0),  # clamped to the SUSPENDED event
    ]
    assert [(e.from_state, e.to_state, e.at) for e in with_resume_starts(early)] == [
        ("SUSPENDING", "SUSPENDED", 100.0),
        ("SUSPENDED", "RESUMING", 100.0),
        ("RESUMING", "RUNNING", 110.0),
    ]
    unrecorded = [Event("vm", "SUSPENDING", "SUSPENDED", 100.0), Event("vm", "SUSPENDED", "RUNNING", 110.0)]
    assert with_resume_starts(unrecorded) == unrecorded
    failed_suspend = [Event("vm", "SUSPENDING", "RUNNING", 110.0, started_at=105.0)]
    assert with_resume_starts(failed_suspend) == failed_suspend
    doc = summarize({"vm": unrecorded}, now=200.0, window_s=60)
    assert doc["resumeSeconds"]["count"] == 0
