"""MicroVM operations through boto3: run, get, list (pagination), suspend, resume, terminate, idempotency, limits."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ember.api.context import Quotas
from ember.contract.enums import MicrovmState
from ember.store import images, microvms, versions
from tests.unit.api.conftest import ACCOUNT_A, EGRESS, REGION, SHELL, Api


def test_run_answers_a_pending_microvm_and_launches_it(api: Api) -> None:
    api.microvms.auto_run = False
    api.create_image("app")
    vm = api.run(
        "app",
        maximumDurationInSeconds=600,
        runHookPayload="hello",
        idlePolicy={"maxIdleDurationSeconds": 120, "suspendedDurationSeconds": 0, "autoResumeEnabled": True},
        ingressNetworkConnectors=[SHELL],
        egressNetworkConnectors=["INTERNET_EGRESS"],
    )
    assert vm["state"] == "PENDING"
    assert vm["microvmId"].startswith("mvm-") and len(vm["microvmId"]) == 36
    assert vm["endpoint"] == f"127.0.0.1:9443/microvms/{vm['microvmId']}"
    assert vm["imageArn"] == f"arn:aws:lambda:{REGION}:{ACCOUNT_A}:microvm-image:app"
    assert vm["imageVersion"] == "1"
    assert vm["maximumDurationInSeconds"] == 600
    assert vm["ingressNetworkConnectors"] == [SHELL]
    assert vm["egressNetworkConnectors"] == [EGRESS]
    assert vm["idlePolicy"]["maxIdleDurationSeconds"] == 120
    assert api.microvms.calls == [("launch", vm["microvmId"])]
    with api.store.read() as session:
        assert microvms.get_microvm(session, ACCOUNT_A, vm["microvmId"]).run_hook_payload == "hello"


def test_run_defaults_the_maximum_duration_to_8_hours(api: Api) -> None:
    api.create_image("app")
    assert api.run("app")["maximumDurationInSeconds"] == 28800


def test_get_accepts_the_id_or_the_arn(api: Api) -> None:
    api.create_image("app")
    vm_id = api.run("app")["microvmId"]
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_A}:microvm:{vm_id}"
    assert api.client.get_microvm(microvmIdentifier=vm_id)["state"] == "RUNNING"
    assert api.client.get_microvm(microvmIdentifier=arn)["microvmId"] == vm_id


def test_run_by_image_arn_and_explicit_version(api: Api) -> None:
    api.create_image("app")
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_A}:microvm-image:app"
    assert api.client.run_microvm(imageIdentifier=arn, imageVersion="1")["imageVersion"] == "1"


def test_list_pages_through_120_microvms_each_exactly_once(api: Api) -> None:
    api.create_image("app")
    with api.store.write() as session:
        image = images.get_image(session, ACCOUNT_A, "app")
        version = versions.get_version(session, image, "1")
        made = {
            microvms.insert_microvm(session, account_id=ACCOUNT_A, image=image, version=version, endpoint="e").id
            for _ in range(120)
        }
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        page = api.client.list_microvms(maxResults=50, **({"nextToken": token} if token else {}))
        assert len(page["items"]) <= 50
        seen += [item["microvmId"] for item in page["items"]]
        pages += 1
        token = page.get("nextToken")
        if not token:
            break
    assert pages == 3
    assert len(seen) == len(set(seen)) == 120
    assert set(seen) == made


def test_list_filters_by_image_and_version_and_paginator_works(api: Api) -> None:
    api.create_image("one")
    api.create_image("two")
    first = api.run("one")["microvmId"]
    api.run("two")
    assert [i["microvmId"] for i in api.client.list_microvms(imageIdentifier="one")["items"]] == [first]
    assert api.client.list_microvms(imageIdentifier="one", imageVersion="2")["items"] == []
    paged = api.client.get_paginator("list_microvms").paginate(PaginationConfig={"PageSize": 1})
    assert len([i for page in paged for i in page["items"]]) == 2


def test_list_includes_terminated_microvms(api: Api) -> None:
    api.create_image("app")
    vm_id = api.run("app")["microvmId"]
    api.client.terminate_microvm(microvmIdentifier=vm_id)
    assert [i["state"] for i in api.client.list_microvms()["items"]] == ["TERMINATED"]


def test_suspend_resume_terminate_move_the_microvm(api: Api) -> None:
    api.create_image("app")
    vm_id = api.run("app")["microvmId"]
    api.client.suspend_microvm(microvmIdentifier=vm_id)
    assert api.client.get_microvm(microvmIdentifier=vm_id)["state"] == "SUSPENDED"
    api.client.suspend_microvm(microvmIdentifier=vm_id)  # idempotent repeat
    api.client.resume_microvm(microvmIdentifier=vm_id)
    assert api.client.get_microvm(microvmIdentifier=vm_id)["state"] == "RUNNING"
    api.client.resume_microvm(microvmIdentifier=vm_id)  # idempotent repeat
    api.client.terminate_microvm(microvmIdentifier=vm_id)
    detail = api.client.get_microvm(microvmIdentifier=vm_id)
    assert detail["state"] == "TERMINATED" and "terminatedAt" in detail
    api.client.terminate_microvm(microvmIdentifier=vm_id)  # idempotent repeat
    assert [c[0] for c in api.microvms.calls] == ["launch", "suspend", "resume", "terminate", "terminate"]


def test_suspend_of_a_pending_microvm_is_a_conflict(api: Api) -> None:
    api.microvms.auto_run = False
    api.create_image("app")
    vm_id = api.run("app")["microvmId"]
    with pytest.raises(api.client.exceptions.ConflictException, match="PENDING: SuspendMicrovm needs a RUNNING") as e:
        api.client.suspend_microvm(microvmIdentifier=vm_id)
    assert e.value.response["resourceId"] == vm_id
    assert e.value.response["resourceType"] == "Microvm"


def test_resume_of_a_terminated_microvm_is_a_conflict(api: Api) -> None:
    api.create_image("app")
    vm_id = api.run("app")["microvmId"]
    api.client.terminate_microvm(microvmIdentifier=vm_id)
    with pytest.raises(api.client.exceptions.ConflictException, match="ResumeMicrovm needs a SUSPENDED"):
        api.client.resume_microvm(microvmIdentifier=vm_id)


def test_unknown_microvm_is_resource_not_found(api: Api) -> None:
    with pytest.raises(api.client.exceptions.ResourceNotFoundException) as e:
        api.client.get_microvm(microvmIdentifier="mvm-" + "0" * 32)
    assert e.value.response["resourceType"] == "Microvm"


def test_malformed_microvm_id_is_a_validation_error(api: Api) -> None:
    with pytest.raises(api.client.exceptions.ValidationException, match="microvmIdentifier"):
        api.client.get_microvm(microvmIdentifier="not-an-id")


def test_account_b_cannot_see_run_token_or_terminate_account_a_resources(api: Api) -> None:
    api.create_image("app")
    vm_id = api.run("app")["microvmId"]
    b = api.client_b
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_A}:microvm:{vm_id}"
    for call in (
        lambda: b.get_microvm(microvmIdentifier=vm_id),
        lambda: b.get_microvm(microvmIdentifier=arn),
        lambda: b.terminate_microvm(microvmIdentifier=vm_id),
        lambda: b.suspend_microvm(microvmIdentifier=vm_id),
        lambda: b.resume_microvm(microvmIdentifier=vm_id),
        lambda: b.create_microvm_auth_token(
            microvmIdentifier=vm_id, expirationInMinutes=5, allowedPorts=[{"port": 8080}]
        ),
        lambda: b.run_microvm(imageIdentifier="app"),
        lambda: b.run_microvm(imageIdentifier=f"arn:aws:lambda:{REGION}:{ACCOUNT_A}:microvm-image:app"),
        lambda: b.get_microvm_image(imageIdentifier="app"),
    ):
        with pytest.raises(b.exceptions.ResourceNotFoundException):
            call()
    assert b.list_microvms()["items"] == []
    assert b.list_microvm_images()["items"] == []
    assert api.client.get_microvm(microvmIdentifier=vm_id)["state"] == "RUNNING"


def test_client_token_replay_returns_the_first_microvm(api: Api) -> None:
    api.create_image("app")
    first = api.run("app", clientToken="token-1", maximumDurationInSeconds=100)
    again = api.run("app", clientToken="token-1", maximumDurationInSeconds=100)
    assert again["microvmId"] == first["microvmId"]
    assert len(api.client.list_microvms()["items"]) == 1
    assert [c for c in api.microvms.calls if c[0] == "launch"] == [("launch", first["microvmId"])]


def test_client_token_with_other_parameters_is_refused(api: Api) -> None:
    api.create_image("app")
    api.run("app", clientToken="token-1", maximumDurationInSeconds=100)
    with pytest.raises(
        api.client.exceptions.ConflictException, match="clientToken was used with different request parameters"
    ):
        api.run("app", clientToken="token-1", maximumDurationInSeconds=200)
    assert len(api.client.list_microvms()["items"]) == 1


def test_validation_message_names_the_field_and_the_bound(api: Api) -> None:
    api.create_image("app")
    with pytest.raises(
        api.client.exceptions.ValidationException,
        match=r"maximumDurationInSeconds: 40000 is greater than the maximum 28800",
    ):
        api.run("app", maximumDurationInSeconds=40000)
    with pytest.raises(
        api.client.exceptions.ValidationException,
        match=r"runHookPayload: 16385 bytes is greater than the maximum 16384 bytes",
    ):
        api.run("app", runHookPayload="x" * 16385)
    with pytest.raises(api.client.exceptions.ValidationException, match=r"ingressNetworkConnectors"):
        api.run("app", ingressNetworkConnectors=["INTERNET_EGRESS"])


def test_idle_minimum_is_the_servers(make_api: Callable[..., Api]) -> None:
    api = make_api()
    api.create_image("app")
    policy = {"maxIdleDurationSeconds": 5, "suspendedDurationSeconds": 0, "autoResumeEnabled": True}
    with pytest.raises(
        api.client.exceptions.ValidationException,
        match=r"idlePolicy.maxIdleDurationSeconds: 5 is less than the minimum 60",
    ):
        api.run("app", idlePolicy=policy)
    lowered = make_api(min_idle_s=2)
    lowered.create_image("app")
    vm = lowered.run("app", idlePolicy=policy)
    assert vm["idlePolicy"]["maxIdleDurationSeconds"] == 5
    assert lowered.client.get_microvm(microvmIdentifier=vm["microvmId"])["idlePolicy"] == policy


def test_image_without_an_active_version_is_resource_not_found(api: Api) -> None:
    api.images.auto_succeed = False
    api.create_image("app")
    with pytest.raises(api.client.exceptions.ResourceNotFoundException, match="has no active version"):
        api.run("app")


def test_running_a_version_that_is_still_building_is_a_conflict(api: Api) -> None:
    api.images.auto_succeed = False
    api.create_image("app")
    with pytest.raises(api.client.exceptions.ConflictException, match="only a SUCCESSFUL version can run"):
        api.run("app", imageVersion="1")


def test_running_an_inactive_version_is_a_conflict(api: Api) -> None:
    api.create_image("app")
    api.client.update_microvm_image_version(imageIdentifier="app", imageVersion="1", status="INACTIVE")
    with pytest.raises(api.client.exceptions.ResourceNotFoundException):
        api.run("app")
    with pytest.raises(api.client.exceptions.ConflictException, match="INACTIVE"):
        api.run("app", imageVersion="1")


def test_memory_quota_counts_suspended_microvms_and_answers_402(make_api: Callable[..., Api]) -> None:
    api = make_api(quotas=Quotas(max_memory_mib=1024))
    api.create_image("app")
    first = api.run("app")["microvmId"]
    api.run("app")
    api.client.suspend_microvm(microvmIdentifier=first)
    with pytest.raises(api.client.exceptions.ServiceQuotaExceededException, match="more than the maximum 1024") as e:
        api.run("app")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 402
    assert e.value.response["quotaCode"] == "L-CD1C0CC4"
    api.client.terminate_microvm(microvmIdentifier=first)
    assert api.run("app")["state"] == "PENDING"


def test_microvm_count_quota(make_api: Callable[..., Api]) -> None:
    api = make_api(quotas=Quotas(max_microvms=1))
    api.create_image("app")
    api.run("app")
    with pytest.raises(api.client.exceptions.ServiceQuotaExceededException, match="maximum is 1"):
        api.run("app")


def test_run_rate_is_throttled_with_retry_after(make_api: Callable[..., Api]) -> None:
    api = make_api(quotas=Quotas(run_per_second=0.1, run_burst=2))
    api.create_image("app")
    api.run("app")
    api.run("app")
    with pytest.raises(api.client.exceptions.ThrottlingException, match="Rate exceeded") as e:
        api.run("app")
    response = e.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert int(response["ResponseMetadata"]["HTTPHeaders"]["retry-after"]) >= 1
    assert response["retryAfterSeconds"] >= 1
    assert response["quotaCode"] == "L-535CA9B6"


def test_failed_run_creates_no_microvm(api: Api) -> None:
    api.create_image("app")
    with pytest.raises(api.client.exceptions.ValidationException):
        api.run("app", clientToken="t", maximumDurationInSeconds=0)
    assert api.client.list_microvms()["items"] == []
    assert api.run("app", clientToken="t")["state"] == "PENDING"


def test_launch_failure_is_an_internal_error_without_traceback(api: Api) -> None:
    api.create_image("app")

    def boom(microvm_id: str) -> None:
        raise RuntimeError("secret detail /var/lib/ember")

    api.microvms.launch = boom  # type: ignore[method-assign]
    with pytest.raises(api.client.exceptions.InternalServerException) as e:
        api.run("app")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert "secret detail" not in e.value.response["Error"]["Message"]
    assert "Traceback" not in str(e.value.response)


def test_microvm_states_are_the_contract_spelling(api: Api) -> None:
    api.microvms.auto_run = False
    api.create_image("app")
    assert api.run("app")["state"] == MicrovmState.PENDING.value


def test_launch_failure_leaves_the_microvm_terminated_not_pending(api: Api) -> None:
    api.create_image("app")

    def boom(microvm_id: str) -> None:
        raise RuntimeError("no")

    api.microvms.launch = boom  # type: ignore[method-assign]
    with pytest.raises(api.client.exceptions.InternalServerException):
        api.run("app", clientToken="launch-1")
    replay = api.run("app", clientToken="launch-1")
    assert replay["state"] == "TERMINATED"
    assert "launch failed" in replay["stateReason"]


def test_a_token_of_another_list_is_refused(api: Api) -> None:
    api.create_image("one")
    api.create_image("two")
    image_token = api.client.list_microvm_images(maxResults=1)["nextToken"]
    with pytest.raises(api.client.exceptions.ValidationException, match="nextToken: is not a token"):
        api.client.list_microvms(nextToken=image_token)
