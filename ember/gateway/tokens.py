"""Endpoint tokens: minted by the API, checked by the gateway, bound to one MicroVM, its ports, a kind and an expiry.

A token is ``ember1.<payload>.<signature>``: ``payload`` is base64url (no padding) of compact JSON
``{"v", "mvm", "acct", "ports", "exp", "kind", "nonce"}`` and ``signature`` is base64url of
HMAC-SHA256(secret, ``"ember1." + payload``). ``ports`` is a sorted list of merged inclusive ``[start, end]``
ranges, or ``"all"``; shell tokens carry ``[]``. ``exp`` is a Unix time in seconds.

Tokens are bearer secrets: nothing here stores them, and there is no revocation list (rotating the
backend's ``token_secret`` revokes every token at once). This module owns the format only; the API decides
who may mint and the gateway decides where to look for the token in a request.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ember.contract import bounds
from ember.errors import EmberError, InvalidInput

TOKEN_HEADER = "X-aws-proxy-auth"
"""The header that carries a token (the contract's TokenParts key)."""
TOKEN_PREFIX = "ember1."
TOKEN_VERSION = 1
MAX_TOKEN_CHARS = 8000
"""TokenParts values are at most 8000 characters; longer input is refused before any decoding."""
NONCE_BYTES = 8

Kind = Literal["proxy", "shell"]
KINDS: tuple[Kind, ...] = ("proxy", "shell")
PortRanges = tuple[tuple[int, int], ...] | Literal["all"]


class TokenRefused(EmberError):
    """A request's token does not grant what it asks for.

    ``reason`` says why, for people (safe to show the caller: it never echoes the token); ``code`` is
    the same as a snake_case word for programs (``token_missing``, ``token_expired``, ...).
    """

    def __init__(self, reason: str, code: str = "token_invalid") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


@dataclass(frozen=True)
class TokenClaims:
    """What a verified token grants."""

    microvm_id: str
    account_id: str
    ports: PortRanges
    expires_at: int
    kind: Kind

    def covers(self, port: int) -> bool:
        """Whether the token may reach ``port`` inside the VM."""
        if self.ports == "all":
            return True
        return any(start <= port <= end for start, end in self.ports)


def mint_token(secret: bytes, microvm_id: str, account_id: str, ports: Sequence[Any] | None,
               expires_in_minutes: int, kind: Kind = "proxy", *, now: float | None = None) -> dict[str, str]:
    """A signed token as the contract's TokenParts: ``{"X-aws-proxy-auth": token}``.

    ``ports`` is a list of PortSpecification (pydantic models or their wire dicts: exactly one of ``port``,
    ``range: {startPort, endPort}``, ``allPorts: {}``). Shell tokens take no ports (``None`` or empty).
    Raises InvalidInput naming the field and the bound.
    """
    if not secret:
        raise ValueError("token secret is empty")
    if kind not in KINDS:
        raise InvalidInput("kind", f"must be one of {', '.join(KINDS)}, got {kind!r}")
    if not isinstance(microvm_id, str) or not microvm_id:
        raise InvalidInput("microvmIdentifier", "must be a non-empty MicroVM id")
    lo, hi = bounds.MIN_TOKEN_EXPIRATION_MIN, bounds.MAX_TOKEN_EXPIRATION_MIN
    if isinstance(expires_in_minutes, bool) or not isinstance(expires_in_minutes, int) \
            or not lo <= expires_in_minutes <= hi:
        raise InvalidInput("expirationInMinutes", f"must be an integer between {lo} and {hi}, "
                                                  f"got {expires_in_minutes!r}")
    if kind == "shell":
        if ports:
            raise InvalidInput("allowedPorts", "a shell token takes no ports")
        scope: list[list[int]] | str = []
    else:
        scope = _encode_ports(parse_port_specs(ports))
    issued = time.time() if now is None else now
    payload = {"v": TOKEN_VERSION, "mvm": microvm_id, "acct": account_id, "ports": scope,
               "exp": int(issued) + expires_in_minutes * 60, "kind": kind, "nonce": secrets.token_hex(NONCE_BYTES)}
    body = _b64encode(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    token = f"{TOKEN_PREFIX}{body}.{_b64encode(_sign(secret, body))}"
    if len(token) > MAX_TOKEN_CHARS:
        raise InvalidInput("allowedPorts", f"too many separate ports: the token would be {len(token)} characters, "
                                           f"more than the {MAX_TOKEN_CHARS} a TokenParts value may hold")
    return {TOKEN_HEADER: token}


def verify_token(secret: bytes, token: str | None, microvm_id: str, port: int | None, kind: Kind,
                 now: float | None = None) -> TokenClaims:
    """The token's claims if it is genuine, unexpired, of ``kind``, for ``microvm_id`` and covers ``port``.

    ``port`` is None for kinds that are not port-scoped (shell). Raises TokenRefused otherwise; the reason
    never echoes the token.
    """
    if not token:
        raise TokenRefused(f"missing token: send it in the {TOKEN_HEADER} header "
                           "(or as the lambda-microvms.authentication.<token> WebSocket subprotocol)",
                           "token_missing")
    if len(token) > MAX_TOKEN_CHARS or not token.isascii() or not token.startswith(TOKEN_PREFIX) \
            or token.count(".") != 2:
        raise TokenRefused("malformed token", "token_malformed")
    body, _, signature = token[len(TOKEN_PREFIX):].partition(".")
    try:
        given = _b64decode(signature)
    except ValueError:
        raise TokenRefused("malformed token", "token_malformed") from None
    if not hmac.compare_digest(given, _sign(secret, body)):
        raise TokenRefused("invalid token signature", "token_forged")
    claims = _decode_claims(body)
    if (time.time() if now is None else now) >= claims.expires_at:
        raise TokenRefused("token expired: mint a new one", "token_expired")
    if claims.kind != kind:
        raise TokenRefused(f"this is a {claims.kind} token; this endpoint needs a {kind} token", "token_kind")
    if claims.microvm_id != microvm_id:
        raise TokenRefused("token is for another MicroVM", "token_other_microvm")
    if port is not None and not claims.covers(port):
        raise TokenRefused(f"token does not allow port {port}", "token_port")
    return claims


def parse_port_specs(specs: Sequence[Any] | None) -> PortRanges:
    """Validate PortSpecification items and merge them into sorted inclusive ranges (or ``"all"``)."""
    if not specs:
        raise InvalidInput("allowedPorts", f"must list at least {bounds.MIN_ALLOWED_PORTS_ITEMS} port specification")
    ranges: list[tuple[int, int]] = []
    for i, raw in enumerate(specs):
        field = f"allowedPorts[{i}]"
        spec = raw.model_dump(exclude_none=True) if hasattr(raw, "model_dump") else raw
        if not isinstance(spec, Mapping):
            raise InvalidInput(field, f"must be an object with one of port, range, allPorts, got {type(raw).__name__}")
        members = [key for key in ("port", "range", "allPorts") if spec.get(key) is not None]
        unknown = sorted(set(spec) - {"port", "range", "allPorts"})
        if unknown:
            raise InvalidInput(f"{field}.{unknown[0]}", "unknown member: expected exactly one of port, range, allPorts")
        if len(members) != 1:
            raise InvalidInput(field, f"must set exactly one of port, range, allPorts (got {len(members)})")
        if members[0] == "allPorts":
            return "all"
        if members[0] == "port":
            port = _check_port(f"{field}.port", spec["port"])
            ranges.append((port, port))
            continue
        rng = spec["range"]
        if not isinstance(rng, Mapping):
            raise InvalidInput(f"{field}.range", "must be an object {startPort, endPort}")
        start = _check_port(f"{field}.range.startPort", rng.get("startPort"))
        end = _check_port(f"{field}.range.endPort", rng.get("endPort"))
        if start > end:
            raise InvalidInput(f"{field}.range", f"startPort {start} is greater than endPort {end}")
        ranges.append((start, end))
    return _merge(ranges)


def _check_port(field: str, value: Any) -> int:
    lo, hi = bounds.MIN_PORT, bounds.MAX_PORT
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InvalidInput(field, f"must be an integer between {lo} and {hi}, got {value!r}")
    return value


def _merge(ranges: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return tuple(merged)


def _encode_ports(ports: PortRanges) -> list[list[int]] | str:
    return "all" if ports == "all" else [[start, end] for start, end in ports]


def _decode_claims(body: str) -> TokenClaims:
    """Claims of a token whose signature already checked out (so a failure here is our own format drift)."""
    try:
        payload = json.loads(_b64decode(body))
        if payload["v"] != TOKEN_VERSION:
            raise TokenRefused(f"unsupported token version {payload['v']!r}", "token_malformed")
        raw_ports = payload["ports"]
        ports: PortRanges = "all" if raw_ports == "all" else tuple((int(a), int(b)) for a, b in raw_ports)
        return TokenClaims(microvm_id=str(payload["mvm"]), account_id=str(payload["acct"]), ports=ports,
                           expires_at=int(payload["exp"]), kind=payload["kind"])
    except (ValueError, KeyError, TypeError):
        raise TokenRefused("malformed token", "token_malformed") from None


def _sign(secret: bytes, body: str) -> bytes:
    return hmac.new(secret, (TOKEN_PREFIX + body).encode("ascii"), hashlib.sha256).digest()


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as exc:
        raise ValueError(str(exc)) from None
