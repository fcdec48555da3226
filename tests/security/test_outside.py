"""Tenant-boundary attacks from outside, against a real ``ember serve``: every attack is refused with the expected
answer, and each succeeds once the one protection that stopped it is switched off (``conftest.Switches``).

``docs/security.md`` lists every attack with the test of each side. The world (``conftest.world``): account A with
VMs ``a1`` and ``a2``, account B with VM ``b``; ``print(ME)`` on a VM's app prints the VM's name.
"""

from __future__ import annotations

import io
import time
import urllib.parse
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ember.gateway.tokens import mint_token
from tests.framework.server import REGION, upload_artifact, wait_for
from tests.security.conftest import (
    BASE,
    HOOK_PREFIX,
    ROLE,
    SECOND_PORT,
    Answer,
    Switches,
    World,
    run_vm,
    with_claims,
)

pytestmark = pytest.mark.vm

API = "/2025-09-09"
WHOAMI = "print(ME)"


def refused(answer: Answer, status: int, code: str, message: str | None = None) -> None:
    """``answer`` is the refusal ``status``/``code`` (and ``message``, when given)."""
    assert (answer.status, answer.code) == (status, code), (answer.status, answer.body[:300])
    if message is not None:
        assert answer.message == message, answer.message


def from_the_app(answer: Answer) -> None:
    """``answer`` came from the app (the code-interpreter's own 404), not from a gateway refusal."""
    assert (answer.status, answer.json()) == (404, {"error": "not found"}), (answer.status, answer.body[:300])


# ---------------------------------------------------------------- 1. a token used on another MicroVM


def test_a_token_for_one_vm_is_refused_on_another_vm_of_the_same_account(world: World) -> None:
    refused(world.execute("a1", WHOAMI, on="a2"), 403, "token_other_microvm", "token is for another MicroVM")


def test_with_the_vm_binding_off_a_token_for_one_vm_runs_code_on_another(world: World, switch_off: Switches) -> None:
    switch_off.token_vm_binding()
    assert world.whoami(world.execute("a1", WHOAMI, on="a2")) == "a2"


def test_a_token_of_account_a_is_refused_on_account_bs_vm(world: World) -> None:
    refused(world.execute("a1", WHOAMI, on="b"), 403, "token_other_microvm", "token is for another MicroVM")


def test_across_accounts_the_account_check_stops_it_too_and_both_off_let_it_through(world: World,
                                                                                 switch_off: Switches) -> None:
    switch_off.token_vm_binding()
    refused(world.execute("a1", WHOAMI, on="b"), 403, "token_account", "token was minted by another account")
    switch_off.token_account()
    assert world.whoami(world.execute("a1", WHOAMI, on="b")) == "b"


# ---------------------------------------------------------------- 2. an expired token


def _expired_token(world: World) -> str:
    """A genuine token for a1 (the server's own key) that expired 45 minutes ago."""
    parts = mint_token(world.token_secret, world.vm_id("a1"), world.a.account_id, [{"port": 8080}], 15,
                       now=time.time() - 3600)
    return parts["X-aws-proxy-auth"]


def test_an_expired_token_is_refused(world: World) -> None:
    refused(world.execute("a1", WHOAMI, token=_expired_token(world)), 403, "token_expired",
            "token expired: mint a new one")


def test_with_the_expiry_check_off_an_expired_token_is_answered(world: World, switch_off: Switches) -> None:
    switch_off.token_expiry()
    assert world.whoami(world.execute("a1", WHOAMI, token=_expired_token(world))) == "a1"


# ---------------------------------------------------------------- 3. forged tokens


def _wrong_key_token(world: World) -> str:
    """A well-formed token for a1 signed with a key that is not the server's."""
    return mint_token(b"not-the-server-key-0123456789abcdef", world.vm_id("a1"), world.a.account_id,
                      [{"port": 8080}], 15)["X-aws-proxy-auth"]


def _tampered_token(world: World) -> str:
    """A genuine token for a1 whose payload was rewritten to name B's VM and account; a1's signature kept."""
    return with_claims(world.token("a1"), mvm=world.vm_id("b"), acct=world.b.account_id)


def test_a_token_signed_with_another_key_is_refused(world: World) -> None:
    refused(world.execute("a1", WHOAMI, token=_wrong_key_token(world)), 403, "token_forged", "invalid token signature")


def test_with_the_signature_check_off_a_token_signed_with_another_key_is_answered(world: World,
                                                                                  switch_off: Switches) -> None:
    switch_off.token_signature()
    assert world.whoami(world.execute("a1", WHOAMI, token=_wrong_key_token(world))) == "a1"


def test_a_tampered_token_is_refused(world: World) -> None:
    refused(world.execute("b", WHOAMI, token=_tampered_token(world)), 403, "token_forged", "invalid token signature")


def test_with_the_signature_check_off_a_tampered_token_reaches_another_accounts_vm(world: World,
                                                                                   switch_off: Switches) -> None:
    switch_off.token_signature()
    assert world.whoami(world.execute("b", WHOAMI, token=_tampered_token(world))) == "b"


# ---------------------------------------------------------------- 4. a token used on another port


def _second_port(world: World, token: str) -> Answer:
    return world.gateway(world.path("a1", "/"), headers={"X-aws-proxy-auth": token,
                                                         "X-aws-proxy-port": str(SECOND_PORT)})


def test_a_token_for_port_8080_is_refused_on_another_port(world: World) -> None:
    refused(_second_port(world, world.token("a1")), 403, "token_port", f"token does not allow port {SECOND_PORT}")
    granted = world.token("a1", ports=[{"port": SECOND_PORT}])  # the service is there for a token that covers it
    assert _second_port(world, granted).json() == {"service": f"admin-{SECOND_PORT}"}


def test_with_the_port_check_off_a_token_for_8080_reaches_another_port(world: World, switch_off: Switches) -> None:
    switch_off.token_port_scope()
    answer = _second_port(world, world.token("a1"))
    assert (answer.status, answer.json()) == (200, {"service": f"admin-{SECOND_PORT}"})


# ---------------------------------------------------------------- 5. account B's API calls on account A's resources


def _build_id(world: World) -> str:
    builds = world.a.client.list_microvm_image_builds(imageIdentifier=world.a.image, imageVersion="1")["items"]
    return str(builds[0]["buildId"])


def _b_calls(world: World, microvm_id: str, image: str, build_id: str) -> dict[str, tuple[str, str, bytes]]:
    """Account B's calls on a MicroVM id and an image name: (method, path, JSON body) by operation."""
    vm = f"{API}/microvms/{urllib.parse.quote(microvm_id, safe='')}"
    img = f"{API}/microvm-images/{urllib.parse.quote(image, safe='')}"
    return {
        "GetMicrovm": ("GET", vm, b""),
        "TerminateMicrovm": ("DELETE", vm, b""),
        "SuspendMicrovm": ("POST", vm + "/suspend", b""),
        "ResumeMicrovm": ("POST", vm + "/resume", b""),
        "CreateMicrovmAuthToken": ("POST", vm + "/auth-token",
                                   b'{"expirationInMinutes": 5, "allowedPorts": [{"port": 8080}]}'),
        "CreateMicrovmShellAuthToken": ("POST", vm + "/shell-auth-token", b'{"expirationInMinutes": 5}'),
        "GetMicrovmLogs": ("GET", vm + "/logs", b""),
        "GetMicrovmImage": ("GET", img, b""),
        "GetMicrovmImageVersion": ("GET", img + "/versions/1", b""),
        "ListMicrovmImageVersions": ("GET", img + "/versions", b""),
        "GetMicrovmImageBuildLogs": ("GET", f"{img}/versions/1/builds/{build_id}/logs", b""),
        "DeleteMicrovmImage": ("DELETE", img, b""),
        "RunMicrovm": ("POST", f"{API}/microvms", f'{{"imageIdentifier": "{image}"}}'.encode()),
    }


@pytest.mark.parametrize("by_arn", [False, True], ids=["by-id", "by-arn"])
def test_account_bs_calls_on_account_as_resources_are_not_found_like_nothing_at_all(world: World,
                                                                                   by_arn: bool) -> None:
    a1 = world.vm_id("a1")
    microvm = f"arn:aws:lambda:{REGION}:{world.a.account_id}:microvm:{a1}" if by_arn else a1
    image = f"arn:aws:lambda:{REGION}:{world.a.account_id}:microvm-image:{world.a.image}" if by_arn else world.a.image
    ghost_vm, ghost_image = "mvm-" + "0" * 32, "no-such-image"
    if by_arn:
        ghost_vm = f"arn:aws:lambda:{REGION}:{world.a.account_id}:microvm:{ghost_vm}"
        ghost_image = f"arn:aws:lambda:{REGION}:{world.a.account_id}:microvm-image:{ghost_image}"
    build_id = _build_id(world)
    real, ghost = _b_calls(world, microvm, image, build_id), _b_calls(world, ghost_vm, ghost_image, build_id)
    for operation, (method, path, body) in real.items():
        answer = world.api(method, path, key=world.b.key, body=body)
        refused(answer, 404, "ResourceNotFoundException")
        g_method, g_path, g_body = ghost[operation]
        nothing = world.api(g_method, g_path, key=world.b.key, body=g_body)
        shown_real = answer.message.replace(a1, "<id>").replace(world.a.image, "<name>")
        shown_ghost = nothing.message.replace("mvm-" + "0" * 32, "<id>").replace("no-such-image", "<name>")
        assert (nothing.status, shown_ghost) == (404, shown_real), operation  # nothing tells A's resource exists
    assert world.a.client.get_microvm(microvmIdentifier=a1)["state"] == "RUNNING"
    assert a1 not in {item["microvmId"] for item in world.b.client.list_microvms()["items"]}
    assert world.a.image not in {item["name"] for item in world.b.client.list_microvm_images()["items"]}


def test_with_account_scoping_off_b_reads_as_vm_image_and_logs(world: World, switch_off: Switches) -> None:
    switch_off.api_account_scoping()
    calls = _b_calls(world, world.vm_id("a1"), world.a.image, _build_id(world))
    for operation in ("GetMicrovm", "GetMicrovmImage", "GetMicrovmImageVersion", "GetMicrovmLogs",
                      "GetMicrovmImageBuildLogs"):
        method, path, body = calls[operation]
        answer = world.api(method, path, key=world.b.key, body=body)
        assert answer.status == 200, (operation, answer.body[:300])
    detail = world.api(*calls["GetMicrovm"][:2], key=world.b.key).json()
    assert detail["microvmId"] == world.vm_id("a1") and f":{world.a.account_id}:" in detail["imageArn"]
    image = world.api(*calls["GetMicrovmImage"][:2], key=world.b.key).json()
    assert image["imageArn"].startswith(f"arn:aws:lambda:{REGION}:{world.a.account_id}:")
    assert b"fetching file://" in world.api(*calls["GetMicrovmImageBuildLogs"][:2], key=world.b.key).body
    by_arn = urllib.parse.quote(f"arn:aws:lambda:{REGION}:{world.a.account_id}:microvm:{world.vm_id('a1')}", safe="")
    refused(world.api("GET", f"{API}/microvms/{by_arn}", key=world.b.key), 404, "ResourceNotFoundException")


def test_with_account_scoping_off_b_mints_a_token_the_gateway_still_refuses_until_its_account_check_is_off(
        world: World, switch_off: Switches) -> None:
    switch_off.api_account_scoping()
    method, path, body = _b_calls(world, world.vm_id("a1"), world.a.image, "-")["CreateMicrovmAuthToken"]
    minted = world.api(method, path, key=world.b.key, body=body)
    assert minted.status == 200, minted.body
    token = minted.json()["authToken"]["X-aws-proxy-auth"]
    refused(world.execute("a1", WHOAMI, token=token), 403, "token_account", "token was minted by another account")
    switch_off.token_account()
    assert world.whoami(world.execute("a1", WHOAMI, token=token)) == "a1"


def test_with_account_scoping_off_b_terminates_a_vm_of_account_a(world: World, switch_off: Switches) -> None:
    victim = run_vm(world.a)["microvmId"]
    switch_off.api_account_scoping()
    answer = world.api(*_b_calls(world, victim, world.a.image, "-")["TerminateMicrovm"][:2], key=world.b.key)
    assert answer.status == 200, answer.body
    state, _ = wait_for("terminate", lambda: world.a.client.get_microvm(microvmIdentifier=victim)["state"],
                        lambda s: s == "TERMINATED", 120)
    assert state == "TERMINATED"


# ---------------------------------------------------------------- 6. path traversal and hook paths


TRAVERSALS = [
    "/x/../state",
    "/%2e%2e/state",
    "/x/%2E%2E/state",
    "/x/..%2fstate",
    "/x/%252e%252e/state",
    "/x/..;/state",
    "/x\\..\\state",
    "/../../microvms/{b}/state",
    "/x%00y",
]
HOOK_PATHS = [
    HOOK_PREFIX + "run",
    "/AWS/Lambda-MicroVMs/Runtime/v1/run",
    "//aws//lambda-microvms/runtime/v1/run",
    "/aws/lambda-microvms/runtime%2Fv1/run",
    "/aws%2flambda-microvms%2fruntime%2fv1%2frun",
    "/aws/lambda-microvms;x=1/runtime/v1/run",
]
HOOK_BODY = b'{"runHookPayload": "set-by-an-outsider"}'


def _on_a2(world: World, rest: str, method: str = "GET", body: bytes | None = None) -> Answer:
    token = world.token("a2")
    return world.gateway(world.path("a2", rest.format(b=world.vm_id("b"))), method=method, body=body,
                         headers={"X-aws-proxy-auth": token, "Content-Type": "application/json"})


@pytest.mark.parametrize("rest", TRAVERSALS)
def test_dot_segments_and_nul_in_the_path_are_refused(world: World, rest: str) -> None:
    if "%00" in rest:
        refused(_on_a2(world, rest), 400, "bad_path", "the path contains a NUL byte")
    else:
        refused(_on_a2(world, rest), 400, "path_traversal", "dot segments ('.', '..') are not allowed in the path")


@pytest.mark.parametrize("rest", TRAVERSALS)
def test_with_the_path_check_off_dot_segments_reach_the_app(world: World, switch_off: Switches, rest: str) -> None:
    switch_off.path_check()
    from_the_app(_on_a2(world, rest))  # a2's app, even for /../../microvms/<b>/…: the VM comes from the prefix


@pytest.mark.parametrize("rest", HOOK_PATHS)
def test_hook_paths_are_refused_however_spelled(world: World, rest: str) -> None:
    refused(_on_a2(world, rest, "POST", HOOK_BODY), 403, "hook_path",
            "hook paths (/aws/lambda-microvms/runtime/) are only for the platform")


def test_with_the_hook_path_check_off_an_outsider_calls_the_run_hook(world: World, switch_off: Switches) -> None:
    switch_off.hook_path_check()
    answer = _on_a2(world, HOOK_PREFIX + "run", "POST", HOOK_BODY)
    assert (answer.status, answer.json()) == (200, {"hook": "run"})
    assert _on_a2(world, "/state").json()["run_payload"] == "set-by-an-outsider"


@pytest.mark.parametrize("rest", HOOK_PATHS[1:])
def test_with_the_hook_path_check_off_other_spellings_reach_the_app(world: World, switch_off: Switches,
                                                                   rest: str) -> None:
    switch_off.hook_path_check()
    from_the_app(_on_a2(world, rest, "POST", HOOK_BODY))


# ---------------------------------------------------------------- 7. oversized request heads


HEADS: dict[str, dict[str, Any]] = {
    "one huge header": {"headers": {"X-Pad": "a" * 20_000}},
    "too many headers": {"headers": {f"X-Pad-{i}": "a" * 300 for i in range(70)}},
    "huge request line": {"target_suffix": "?pad=" + "a" * 10_000},
}
HEAD_REFUSALS = {
    "one huge header": (431, "headers_too_large", "the request head is larger than 16384 bytes"),
    "too many headers": (431, "headers_too_large", "the request head is larger than 16384 bytes"),
    "huge request line": (414, "request_line_too_long", "the request line is longer than 8192 bytes"),
}


def _hits(world: World) -> str:
    return str(world.execute("a1", "print(HITS)").json()["stdout"]).strip()


@pytest.mark.parametrize("attack", list(HEADS))
def test_an_oversized_head_is_refused_before_it_reaches_the_vm(world: World, attack: str) -> None:
    assert world.execute("a1", "HITS = 0").status == 200
    refused(world.execute("a1", "HITS += 1", **HEADS[attack]), *HEAD_REFUSALS[attack])
    assert _hits(world) == "0"


@pytest.mark.parametrize("attack", list(HEADS))
def test_with_the_head_limits_raised_an_oversized_head_reaches_the_app(world: World, switch_off: Switches,
                                                                      attack: str) -> None:
    switch_off.head_limits()
    assert world.execute("a1", "HITS = 0").status == 200
    answer = world.execute("a1", "HITS += 1", **HEADS[attack])
    assert answer.status == 200 and answer.json()["error"] is None, answer.body[:300]
    assert _hits(world) == "1"


# ---------------------------------------------------------------- 8. another account's file:// artifact


VICTIM_DOCKERFILE = "FROM python:3.11-slim\nCOPY secret.txt /srv/secret.txt\nCOPY only-in-the-victims-zip /x\n"


def _victim_upload(world: World, tmp_path: Any) -> str:
    """Account A uploads a zip holding a secret; its file:// URI."""
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as z:
        z.writestr("Dockerfile", VICTIM_DOCKERFILE)
        z.writestr("secret.txt", "account A's secret\n")
    path = tmp_path / "victim.zip"
    path.write_bytes(data.getvalue())
    return upload_artifact(world.api_url, *world.a.key, path)


def _b_builds_from(world: World, uri: str, name: str) -> Any:
    return world.b.client.create_microvm_image(name=name, baseImageArn=BASE, buildRoleArn=ROLE,
                                               codeArtifact={"uri": uri})


def test_another_accounts_upload_and_host_files_are_refused_as_artifacts(world: World, tmp_path: Any) -> None:
    victim = _victim_upload(world, tmp_path)
    own = world.b.artifact_uri.rsplit("/", 1)[0]
    escapes = [victim, "file:///etc/passwd", "/etc/shadow", f"{own}/../{world.a.account_id}/{victim.rsplit('/', 1)[1]}"]
    for uri in escapes:
        with pytest.raises(world.b.client.exceptions.ValidationException) as info:
            _b_builds_from(world, uri, "stolen")
        message = info.value.response["Error"]["Message"]
        assert message == (f"codeArtifact.uri: {uri!r} is not an artifact this account uploaded: file:// artifacts "
                           "must be uploaded with POST /ember/artifacts (or `ember image build`), which answers "
                           "the URI to use")
    assert "stolen" not in {item["name"] for item in world.b.client.list_microvm_images()["items"]}


def test_with_the_artifact_confinement_off_b_builds_from_as_upload(world: World, switch_off: Switches,
                                                                  tmp_path: Any) -> None:
    victim = _victim_upload(world, tmp_path)
    switch_off.artifact_confinement()
    created = _b_builds_from(world, victim, "stolen-off")
    version = created["imageVersion"]
    got, _ = wait_for("build", lambda: world.b.client.get_microvm_image_version(imageIdentifier="stolen-off",
                                                                             imageVersion=version),
                      lambda v: v["state"] in ("SUCCESSFUL", "FAILED"), 300, 0.5)
    # The build unpacked A's zip: it fails only on the line of A's Dockerfile that names a file A left out.
    assert "only-in-the-victims-zip" in got["stateReason"]
    build_id = world.b.client.list_microvm_image_builds(imageIdentifier="stolen-off",
                                                        imageVersion=version)["items"][0]["buildId"]
    log = world.api("GET", f"{API}/microvm-images/stolen-off/versions/{version}/builds/{build_id}/logs",
                    key=world.b.key).body.decode()
    assert f"fetching {victim}" in log and "artifact: 2 files" in log


# ---------------------------------------------------------------- 9. unsigned, badly signed and stale API calls


def _get_a1(world: World, key: tuple[str, str] | None, **kwargs: Any) -> Answer:
    return world.api("GET", f"{API}/microvms/{world.vm_id('a1')}", key=key, **kwargs)


def _stale(minutes: int) -> datetime:
    return datetime.now(UTC) + timedelta(minutes=minutes)


def test_an_unsigned_call_is_refused(world: World) -> None:
    answer = _get_a1(world, None)
    refused(answer, 403, "AccessDeniedException")
    assert answer.message.startswith("missing Authorization header")
    upload = world.api("POST", "/ember/artifacts", key=None, body=b"PK\x05\x06" + bytes(18),
                       headers={"Content-Type": "application/zip", "X-Ember-Content-SHA256": "0" * 64})
    refused(upload, 403, "AccessDeniedException")


def test_with_authentication_off_an_unsigned_call_reads_as_vm(world: World, switch_off: Switches) -> None:
    switch_off.authentication(world.a.account_id)
    answer = _get_a1(world, None)
    assert answer.status == 200 and answer.json()["microvmId"] == world.vm_id("a1")


def test_a_call_signed_with_a_wrong_secret_is_refused(world: World) -> None:
    answer = _get_a1(world, (world.a.key[0], "not-the-secret/0123456789abcdefghijklmnopq"))
    refused(answer, 403, "AccessDeniedException")
    assert answer.message.startswith("the request signature does not match")


def test_with_the_signature_compare_off_a_wrong_secret_reads_as_vm(world: World, switch_off: Switches) -> None:
    switch_off.sigv4_signature()
    answer = _get_a1(world, (world.a.key[0], "not-the-secret/0123456789abcdefghijklmnopq"))
    assert answer.status == 200 and answer.json()["microvmId"] == world.vm_id("a1")


@pytest.mark.parametrize("minutes", [-20, 20], ids=["20-min-old", "20-min-ahead"])
def test_a_call_signed_far_from_the_servers_clock_is_refused(world: World, minutes: int) -> None:
    answer = _get_a1(world, world.a.key, when=_stale(minutes))
    refused(answer, 403, "AccessDeniedException")
    assert "the maximum difference is 900 s: check the client's clock" in answer.message


def test_with_the_clock_check_off_a_replayed_old_call_is_answered(world: World, switch_off: Switches) -> None:
    switch_off.sigv4_clock()
    answer = _get_a1(world, world.a.key, when=_stale(-20))
    assert answer.status == 200 and answer.json()["microvmId"] == world.vm_id("a1")
