"""Shared shapes: union members, port specifications, maps with per-key checks, connectors by direction."""

from __future__ import annotations

import pytest

import ember.contract as c


def test_logging_needs_exactly_one_member() -> None:
    assert c.Logging.model_validate({"disabled": {}}).to_wire() == {"disabled": {}}
    assert c.Logging.model_validate({"cloudWatch": {"logGroup": "/aws/lambda-microvms/web"}}).cloudWatch is not None
    for bad in ({}, {"disabled": {}, "cloudWatch": {}}):
        with pytest.raises(c.ValidationException, match=r"^logging: exactly one of cloudWatch, disabled must be set"):
            c.parse_request(c.RunMicrovmRequest, {"imageIdentifier": "web", "logging": bad})


def test_log_group_and_stream_patterns() -> None:
    with pytest.raises(c.ValidationException, match=r"logging.cloudWatch.logGroup: 'bad group'"):
        c.parse_request(
            c.RunMicrovmRequest, {"imageIdentifier": "w", "logging": {"cloudWatch": {"logGroup": "bad group"}}}
        )
    with pytest.raises(c.ValidationException, match=r"logging.cloudWatch.logStream: 'a:b'"):
        c.parse_request(c.RunMicrovmRequest, {"imageIdentifier": "w", "logging": {"cloudWatch": {"logStream": "a:b"}}})


@pytest.mark.parametrize(
    ("spec", "inside", "outside"),
    [
        ({"port": 8080}, 8080, 8081),
        ({"range": {"startPort": 9000, "endPort": 9010}}, 9010, 8999),
        ({"allPorts": {}}, 1, None),
    ],
)
def test_port_specification_covers(spec: dict, inside: int, outside: int | None) -> None:
    model = c.PortSpecification.model_validate(spec)
    assert model.covers(inside)
    if outside is not None:
        assert not model.covers(outside)
    assert model.to_wire() == spec


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, "exactly one of port, range, allPorts must be set (got none)"),
        ({"port": 1, "allPorts": {}}, "exactly one of port, range, allPorts must be set (got port, allPorts)"),
        ({"range": {"startPort": 10, "endPort": 9}}, "allowedPorts[0].range: startPort 10 is greater than endPort 9"),
    ],
)
def test_port_specification_errors(spec: dict, message: str) -> None:
    with pytest.raises(c.ValidationException) as caught:
        c.parse_request(
            c.CreateMicrovmAuthTokenRequest,
            {"microvmIdentifier": "mvm-" + "0" * 32, "expirationInMinutes": 5, "allowedPorts": [spec]},
        )
    assert message in caught.value.message


def test_tags_allow_unicode_letters_and_the_punctuation_set() -> None:
    model = c.TagResourceRequest.model_validate(
        {
            "Resource": c.image_arn("us-east-1", "123456789012", "web"),
            "Tags": {"équipe": "café au lait", "a_.:/=+-@": ""},
        }
    )
    assert model.Tags["équipe"] == "café au lait"
    with pytest.raises(c.ValidationException, match=r"tags: key 'a\*' may contain only letters"):
        c.parse_request(
            c.CreateMicrovmImageRequest,
            {
                "name": "w",
                "baseImageArn": "b",
                "buildRoleArn": "arn:aws:iam::123456789012:role/r",
                "codeArtifact": {"uri": "u"},
                "tags": {"a*": "v"},
            },
        )


def test_untag_keys_are_checked() -> None:
    arn = c.image_arn("us-east-1", "123456789012", "web")
    with pytest.raises(
        c.InvalidParameterValueException, match=r"TagKeys\[1\]: length 0 is less than the minimum length 1"
    ):
        c.parse_request(
            c.UntagResourceRequest, {"Resource": arn, "TagKeys": ["a", ""]}, error_cls=c.InvalidParameterValueException
        )


def test_connectors_must_go_the_right_way() -> None:
    with pytest.raises(
        c.ValidationException, match=r"egressNetworkConnectors\[0\]: ALL_INGRESS is not an egress connector"
    ):
        c.parse_request(c.RunMicrovmRequest, {"imageIdentifier": "w", "egressNetworkConnectors": ["ALL_INGRESS"]})
    with pytest.raises(
        c.ValidationException, match=r"ingressNetworkConnectors\[0\]: .* is not a managed network connector"
    ):
        c.parse_request(
            c.RunMicrovmRequest,
            {
                "imageIdentifier": "w",
                "ingressNetworkConnectors": ["arn:aws:lambda:us-east-1:123456789012:network-connector:x"],
            },
        )


def test_token_parts_bounds() -> None:
    with pytest.raises(c.ValidationException, match=r"^authToken: 0 entries is fewer than the minimum 1$"):
        c.parse_request(c.CreateMicrovmAuthTokenResponse, {"authToken": {}})
    with pytest.raises(c.ValidationException, match=r"greater than the maximum length 8000"):
        c.parse_request(c.CreateMicrovmAuthTokenResponse, {"authToken": {"X-aws-proxy-auth": "t" * 8001}})
