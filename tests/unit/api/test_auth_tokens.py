"""Endpoint tokens: minted for the caller's live MicroVMs, verifiable by the gateway, shell only with SHELL_INGRESS."""

from __future__ import annotations

import pytest

from ember.gateway.tokens import TOKEN_HEADER, verify_token
from tests.unit.api.conftest import ACCOUNT_A, SHELL, Api


def test_auth_token_is_port_scoped_and_verifies(api: Api) -> None:
    api.create_image("app")
    vm_id = api.run("app")["microvmId"]
    parts = api.client.create_microvm_auth_token(
        microvmIdentifier=vm_id,
        expirationInMinutes=15,
        allowedPorts=[{"port": 8080}, {"range": {"startPort": 9000, "endPort": 9001}}],
    )["authToken"]
    claims = verify_token(api.ctx.token_secret, parts[TOKEN_HEADER], vm_id, 9001, "proxy")
    assert (claims.microvm_id, claims.account_id) == (vm_id, ACCOUNT_A)
    assert claims.covers(8080) and not claims.covers(8081)


def test_auth_token_bounds_are_named(api: Api) -> None:
    api.create_image("app")
    vm_id = api.run("app")["microvmId"]
    with pytest.raises(
        api.client.exceptions.ValidationException, match="expirationInMinutes: 61 is greater than the maximum 60"
    ):
        api.client.create_microvm_auth_token(
            microvmIdentifier=vm_id, expirationInMinutes=61, allowedPorts=[{"port": 8080}]
        )
    with pytest.raises(api.client.exceptions.ValidationException, match="exactly one of port, range, allPorts"):
        api.client.create_microvm_auth_token(
            microvmIdentifier=vm_id, expirationInMinutes=1, allowedPorts=[{"port": 1, "allPorts": {}}]
        )
    with pytest.raises(api.client.exceptions.ValidationException, match="allowedPorts"):
        api.client.create_microvm_auth_token(microvmIdentifier=vm_id, expirationInMinutes=1, allowedPorts=[])


def test_token_for_a_terminated_microvm_is_a_conflict(api: Api) -> None:
    api.create_image("app")
    vm_id = api.run("app")["microvmId"]
    api.client.terminate_microvm(microvmIdentifier=vm_id)
    with pytest.raises(api.client.exceptions.ConflictException, match="TERMINATED"):
        api.client.create_microvm_auth_token(
            microvmIdentifier=vm_id, expirationInMinutes=1, allowedPorts=[{"allPorts": {}}]
        )


def test_shell_token_needs_the_shell_ingress_connector(api: Api) -> None:
    api.create_image("app")
    plain = api.run("app")["microvmId"]
    with pytest.raises(api.client.exceptions.ConflictException, match="not run with the SHELL_INGRESS"):
        api.client.create_microvm_shell_auth_token(microvmIdentifier=plain, expirationInMinutes=5)
    shell = api.run("app", ingressNetworkConnectors=[SHELL])["microvmId"]
    token = api.client.create_microvm_shell_auth_token(microvmIdentifier=shell, expirationInMinutes=5)["authToken"]
    assert verify_token(api.ctx.token_secret, token[TOKEN_HEADER], shell, None, "shell").kind == "shell"
