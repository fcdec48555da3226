"""Where a client finds Ember: the API endpoint, the region, the credentials and the gateway's CA.

Every setting is an argument first, then an environment variable, then a default that fits a server on
this machine:

=================  ==========================================================  ===========================
setting            environment, in order                                        default
=================  ==========================================================  ===========================
endpoint           ``EMBER_ENDPOINT``                                           ``http://127.0.0.1:9180``
region             ``EMBER_REGION``, ``AWS_REGION``, ``AWS_DEFAULT_REGION``     ``us-east-1``
credentials        ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, then        ``$EMBER_HOME/credentials.json``
                   ``EMBER_ROOT_ACCESS_KEY_ID``/``EMBER_ROOT_SECRET_ACCESS_KEY``
gateway CA         ``EMBER_CA_BUNDLE``                                          the CA ``ember serve`` wrote under
                                                                                ``$EMBER_HOME`` (if any)
gateway scheme     ``EMBER_GATEWAY_SCHEME``                                     ``https``
=================  ==========================================================  ===========================

The credentials file is the one ``ember serve`` writes on first start (``ember.server.root_credentials``);
the SDK only reads it and never creates one. Nothing here touches the network.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from ember.settings import DEFAULT_HOME

from .errors import ConfigurationError

DEFAULT_ENDPOINT = "http://127.0.0.1:9180"
DEFAULT_REGION = "us-east-1"
SERVICE_NAME = "lambda"
"""The SigV4 signing name of the Lambda MicroVMs API (CONTRACT §1.1)."""
ENDPOINT_ENV = "EMBER_ENDPOINT"
REGION_ENVS = ("EMBER_REGION", "AWS_REGION", "AWS_DEFAULT_REGION")
AWS_KEY_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
AWS_SESSION_TOKEN_ENV = "AWS_SESSION_TOKEN"
ROOT_KEY_ENV = ("EMBER_ROOT_ACCESS_KEY_ID", "EMBER_ROOT_SECRET_ACCESS_KEY")
CA_BUNDLE_ENV = "EMBER_CA_BUNDLE"
GATEWAY_SCHEME_ENV = "EMBER_GATEWAY_SCHEME"
CREDENTIALS_FILE = "credentials.json"
CA_FILE = "ca.pem"
CA_DIRS = ("tls", "gateway", "")
"""Folders of ``$EMBER_HOME`` where ``ember serve`` may keep the gateway's ``ca.pem``, most likely first."""


@dataclass(frozen=True)
class Credentials:
    """An access key pair (and session token, if any); ``source`` says where it was found."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)
    source: str = "arguments"


def ember_home() -> Path:
    """``$EMBER_HOME``, else ``~/.local/share/ember`` (not created: a client only reads what a server wrote)."""
    raw = os.environ.get("EMBER_HOME")
    return Path(raw).expanduser() if raw else DEFAULT_HOME.expanduser()


def resolve_endpoint(endpoint: str | None = None) -> str:
    """The API's base URL without a trailing slash; refuses anything but ``http(s)://host[:port]``."""
    url = (endpoint or os.environ.get(ENDPOINT_ENV) or DEFAULT_ENDPOINT).strip().rstrip("/")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"endpoint {url!r} is not a URL like http://127.0.0.1:9180")
    return url


def resolve_region(region: str | None = None) -> str:
    """The region to sign for: the argument, else the first region environment variable set, else us-east-1."""
    return region or next((os.environ[n] for n in REGION_ENVS if os.environ.get(n)), None) or DEFAULT_REGION


def resolve_credentials(access_key_id: str | None = None, secret_access_key: str | None = None,
                        session_token: str | None = None, *, home: Path | None = None) -> Credentials:
    """The key pair to sign with: arguments, ``AWS_*``, ``EMBER_ROOT_*``, then the local ``credentials.json``."""
    if access_key_id or secret_access_key:
        if not (access_key_id and secret_access_key):
            raise ConfigurationError("give both access_key_id and secret_access_key, or neither")
        return Credentials(access_key_id, secret_access_key, session_token, "arguments")
    for names, source in ((AWS_KEY_ENV, "environment (AWS_*)"), (ROOT_KEY_ENV, "environment (EMBER_ROOT_*)")):
        key_id, secret = (os.environ.get(n) for n in names)
        if key_id and secret:
            token = os.environ.get(AWS_SESSION_TOKEN_ENV) if names is AWS_KEY_ENV else None
            return Credentials(key_id, secret, token, source)
    path = (home or ember_home()) / CREDENTIALS_FILE
    try:
        stored = json.loads(path.read_text())
        return Credentials(stored["access_key_id"], stored["secret_access_key"], None, str(path))
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigurationError(f"cannot read credentials from {path}: {exc}") from None
    raise ConfigurationError(
        f"no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (`eval \"$(ember credentials)\"` on the "
        f"server's machine prints them), or start `ember serve` here so that {path} exists")


def local_ca_bundle(home: Path | None = None) -> Path | None:
    """The gateway CA to trust: ``$EMBER_CA_BUNDLE``, else the ``ca.pem`` a local ``ember serve`` wrote, else None."""
    raw = os.environ.get(CA_BUNDLE_ENV)
    if raw:
        return Path(raw).expanduser()
    base = home or ember_home()
    for folder in CA_DIRS:
        candidate = base / folder / CA_FILE if folder else base / CA_FILE
        if candidate.is_file():
            return candidate
    return None


def gateway_scheme(scheme: str | None = None) -> str:
    """``https`` (the gateway's default) or ``http`` (a server run with ``--no-tls``)."""
    value = (scheme or os.environ.get(GATEWAY_SCHEME_ENV) or "https").lower()
    if value not in ("http", "https"):
        raise ConfigurationError(f"gateway scheme {value!r} must be http or https")
    return value


__all__ = [
    "DEFAULT_ENDPOINT",
    "DEFAULT_REGION",
    "SERVICE_NAME",
    "Credentials",
    "ember_home",
    "gateway_scheme",
    "local_ca_bundle",
    "resolve_credentials",
    "resolve_endpoint",
    "resolve_region",
]
