"""Where a client finds its endpoint, region, credentials and the gateway CA."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ember.sdk import config, errors


def test_credentials_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "credentials.json").write_text(json.dumps({"account_id": "123456789012", "access_key_id": "FILE",
                                                           "secret_access_key": "s-file"}))
    assert config.resolve_credentials(home=tmp_path).access_key_id == "FILE"
    monkeypatch.setenv("EMBER_ROOT_ACCESS_KEY_ID", "ROOT")
    monkeypatch.setenv("EMBER_ROOT_SECRET_ACCESS_KEY", "s-root")
    assert config.resolve_credentials(home=tmp_path).access_key_id == "ROOT"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AWS")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s-aws")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "t")
    found = config.resolve_credentials(home=tmp_path)
    assert (found.access_key_id, found.session_token) == ("AWS", "t")
    assert config.resolve_credentials("ARG", "s-arg", home=tmp_path).access_key_id == "ARG"
    assert "s-arg" not in repr(config.resolve_credentials("ARG", "s-arg"))


def test_missing_credentials_say_how_to_get_them(tmp_path: Path) -> None:
    with pytest.raises(errors.ConfigurationError, match="ember credentials"):
        config.resolve_credentials(home=tmp_path)
    assert not (tmp_path / "credentials.json").exists()  # a client never creates them
    with pytest.raises(errors.ConfigurationError, match="both"):
        config.resolve_credentials("only-the-id")


def test_endpoint_and_region(monkeypatch: pytest.MonkeyPatch) -> None:
    assert config.resolve_endpoint() == "http://127.0.0.1:9180"
    monkeypatch.setenv("EMBER_ENDPOINT", "http://10.0.0.5:9999/")
    assert config.resolve_endpoint() == "http://10.0.0.5:9999"
    with pytest.raises(errors.ConfigurationError, match="not a URL"):
        config.resolve_endpoint("127.0.0.1:9180")
    assert config.resolve_region() == "us-east-1"
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    assert config.resolve_region() == "eu-west-1"
    monkeypatch.setenv("EMBER_REGION", "ap-northeast-1")
    assert config.resolve_region() == "ap-northeast-1"
    assert config.resolve_region("us-west-2") == "us-west-2"


def test_ca_bundle_is_found_under_the_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert config.local_ca_bundle(tmp_path) is None
    (tmp_path / "tls").mkdir()
    (tmp_path / "tls" / "ca.pem").write_text("pem")
    assert config.local_ca_bundle(tmp_path) == tmp_path / "tls" / "ca.pem"
    monkeypatch.setenv("EMBER_CA_BUNDLE", "/etc/ca.pem")
    assert config.local_ca_bundle(tmp_path) == Path("/etc/ca.pem")


def test_gateway_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    assert config.gateway_scheme() == "https"
    monkeypatch.setenv("EMBER_GATEWAY_SCHEME", "HTTP")
    assert config.gateway_scheme() == "http"
    with pytest.raises(errors.ConfigurationError):
        config.gateway_scheme("ftp")
