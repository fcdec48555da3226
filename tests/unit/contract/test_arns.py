"""Identifiers and ARNs: formats, "ARN or ID" parsing, and another tenant's ARN being not found."""

from __future__ import annotations

import re

import pytest

import ember.contract as c

ACCOUNT = "123456789012"
OTHER = "210987654321"
VM = "mvm-0123456789abcdef0123456789abcdef"


def test_formats() -> None:
    assert c.image_arn("us-east-1", ACCOUNT, "web") == "arn:aws:lambda:us-east-1:123456789012:microvm-image:web"
    assert c.managed_image_arn("eu-west-1", "python-3.11") == "arn:aws:lambda:eu-west-1:aws:microvm-image:python-3.11"
    assert c.microvm_arn("us-east-1", ACCOUNT, VM) == f"arn:aws:lambda:us-east-1:123456789012:microvm:{VM}"
    assert (
        c.connector_arn("us-east-1", "INTERNET_EGRESS")
        == "arn:aws:lambda:us-east-1:aws:network-connector:aws-network-connector:INTERNET_EGRESS"
    )


def test_new_ids_have_the_documented_shape() -> None:
    ids = {c.new_microvm_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(re.fullmatch(r"mvm-[0-9a-f]{32}", i) for i in ids)
    assert re.fullmatch(r"[0-9a-f]{32}", c.new_build_id())


@pytest.mark.parametrize("value", ["web", c.image_arn("us-east-1", ACCOUNT, "web")])
def test_image_identifier_accepts_name_or_arn(value: str) -> None:
    assert c.parse_image_identifier(value, account=ACCOUNT, region="us-east-1") == "web"


@pytest.mark.parametrize(
    "value",
    [
        "has space",
        "arn:aws:lambda:us-east-1:123456789012:microvm:" + VM,
        "arn:aws:s3:::bucket",
        "arn:aws:lambda:us-east-1:123456789012:microvm-image/web",
        "",
    ],
)
def test_image_identifier_garbage_names_the_field(value: str) -> None:
    with pytest.raises(c.ValidationException) as caught:
        c.parse_image_identifier(value, field="imageIdentifier")
    assert caught.value.message.startswith("imageIdentifier: ")
    assert caught.value.field == "imageIdentifier"


def test_image_arn_of_another_account_is_not_found() -> None:
    with pytest.raises(c.ResourceNotFoundException) as caught:
        c.parse_image_identifier(c.image_arn("us-east-1", OTHER, "web"), account=ACCOUNT)
    assert caught.value.resource_type == "MicrovmImage"


def test_image_arn_of_another_region_is_not_found() -> None:
    with pytest.raises(c.ResourceNotFoundException):
        c.parse_image_identifier(c.image_arn("eu-west-1", ACCOUNT, "web"), region="us-east-1")


def test_managed_image_is_not_a_runnable_image() -> None:
    with pytest.raises(c.ValidationException, match="managed base image"):
        c.parse_image_identifier(c.managed_image_arn("us-east-1", "python-3.11"))


def test_managed_image_identifier() -> None:
    assert c.parse_managed_image_identifier(c.managed_image_arn("us-east-1", "debian-bookworm")) == "debian-bookworm"
    assert c.parse_managed_image_identifier("python-3.11") == "python-3.11"
    with pytest.raises(c.ValidationException, match=r"^baseImageArn: "):
        c.parse_managed_image_identifier(c.image_arn("us-east-1", ACCOUNT, "web"))


@pytest.mark.parametrize("value", [VM, c.microvm_arn("us-east-1", ACCOUNT, VM)])
def test_microvm_identifier_accepts_id_or_arn(value: str) -> None:
    assert c.parse_microvm_identifier(value, account=ACCOUNT) == VM


@pytest.mark.parametrize(
    "value",
    [
        "mvm-0123",
        VM.upper(),
        "mvm-0123456789abcdef0123456789abcdeg",
        "6f1c2a7e-0000-4000-8000-000000000000",
        "arn:aws:lambda:us-east-1:aws:microvm:" + VM,
        "arn:aws:lambda:us-east-1:123456789012:microvm-image:web",
    ],
)
def test_microvm_identifier_garbage_names_the_field(value: str) -> None:
    with pytest.raises(c.ValidationException, match=r"^microvmIdentifier: .* is neither a MicroVM id"):
        c.parse_microvm_identifier(value)


def test_microvm_arn_of_another_account_is_not_found() -> None:
    with pytest.raises(c.ResourceNotFoundException) as caught:
        c.parse_microvm_identifier(c.microvm_arn("us-east-1", OTHER, VM), account=ACCOUNT)
    assert caught.value.resource_id == c.microvm_arn("us-east-1", OTHER, VM)


@pytest.mark.parametrize("name", list(c.NetworkConnectorName))
def test_connectors_by_arn_or_name(name: c.NetworkConnectorName) -> None:
    assert c.parse_connector(c.connector_arn("us-east-1", name), field="ingressNetworkConnectors[0]") is name
    assert c.parse_connector(name.value, field="x") is name


@pytest.mark.parametrize(
    "value",
    [
        "arn:aws:lambda:us-east-1:123456789012:network-connector:my-vpc",
        "arn:aws:lambda:us-east-1:aws:network-connector:aws-network-connector:EVERYTHING",
        "INTERNET",
    ],
)
def test_unknown_connectors_are_rejected(value: str) -> None:
    with pytest.raises(c.ValidationException, match=r"^egressNetworkConnectors\[0\]: .* is not a managed network"):
        c.parse_connector(value, field="egressNetworkConnectors[0]")


def test_parse_arn_round_trips() -> None:
    arn = c.microvm_arn("us-west-2", ACCOUNT, VM)
    parsed = c.parse_arn(arn)
    assert parsed is not None
    assert (parsed.region, parsed.account, parsed.resource_type, parsed.resource) == (
        "us-west-2",
        ACCOUNT,
        "microvm",
        VM,
    )
    assert str(parsed) == arn
    assert c.parse_arn("not an arn") is None
