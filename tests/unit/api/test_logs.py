"""The log extension routes: NDJSON lines after ``since``; ``follow`` streams until the owner is done."""

from __future__ import annotations

import json
import threading
import time

from ember.store import logs
from tests.unit.api.conftest import KEY_B, Api, send


def _lines(body: bytes) -> list[dict[str, object]]:
    return [json.loads(line) for line in body.decode().splitlines() if line]


def test_microvm_log_lines_after_since(api: Api) -> None:
    api.create_image("app")
    vm_id = api.run("app")["microvmId"]
    with api.store.write() as session:
        logs.append_logs(session, logs.OWNER_MICROVM, vm_id, ["one", "two", "three"])
    response = send(api, "GET", f"/2025-09-09/microvms/{vm_id}/logs?since=1")
    assert response.status == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = _lines(response.body)
    assert [(line["seq"], line["line"], line["stream"]) for line in lines] == [
        (2, "two", "stdout"),
        (3, "three", "stdout"),
    ]
    assert isinstance(lines[0]["at"], float)


def test_follow_streams_new_lines_until_the_microvm_terminates(api: Api) -> None:
    api.create_image("app")
    vm_id = api.run("app")["microvmId"]

    def later() -> None:
        time.sleep(0.3)
        with api.store.write() as session:
            logs.append_logs(session, logs.OWNER_MICROVM, vm_id, ["late"])
        time.sleep(0.3)
        api.client.terminate_microvm(microvmIdentifier=vm_id)

    worker = threading.Thread(target=later)
    worker.start()
    started = time.monotonic()
    response = send(api, "GET", f"/2025-09-09/microvms/{vm_id}/logs?follow=true")
    worker.join()
    assert [line["line"] for line in _lines(response.body)] == ["late"]
    assert time.monotonic() - started < 10


def test_build_log_of_a_finished_build(api: Api) -> None:
    api.create_image("app")
    build_id = api.images.scheduled[0]
    with api.store.write() as session:
        logs.append_logs(session, logs.OWNER_BUILD, build_id, ["FROM python:3.11", "done"])
    path = f"/2025-09-09/microvm-images/app/versions/1/builds/{build_id}/logs?follow=true"
    assert [line["line"] for line in _lines(send(api, "GET", path).body)] == ["FROM python:3.11", "done"]


def test_logs_of_another_accounts_microvm_are_not_found(api: Api) -> None:
    api.create_image("app")
    vm_id = api.run("app")["microvmId"]
    response = send(api, "GET", f"/2025-09-09/microvms/{vm_id}/logs", key=KEY_B)
    assert (response.status, response.code) == (404, "ResourceNotFoundException")
    assert send(api, "GET", f"/2025-09-09/microvms/{vm_id}/logs?since=-1").status == 400
