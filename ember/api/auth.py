"""SigV4 verification of control-plane requests: which account (if any) sent this request.

The server recomputes the signature with botocore's own signer (``SigV4Auth``) on an ``AWSRequest`` rebuilt from
what arrived: the method, the URL path exactly as received, the query, the headers the client signed and the body.
Service name ``lambda``; the region is the one in the credential scope (clients may be configured for any region
string). The secret comes from the store (``accounts.find_access_key``); the key's account scopes every query.

Everything that fails here is an ``AccessDeniedException`` (403) whose message says what was wrong: no or
malformed ``Authorization``, an unknown access key, a request time more than ``MAX_CLOCK_SKEW_S`` away from the
server's clock, a body that does not match ``X-Amz-Content-SHA256``, or a signature that does not match.
Signatures are compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qsl

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from multidict import CIMultiDictProxy

from ember.contract.errors import AccessDeniedException

SIGNING_SERVICE = "lambda"
ALGORITHM = "AWS4-HMAC-SHA256"
MAX_CLOCK_SKEW_S = 15 * 60
"""How far the request's ``X-Amz-Date`` may be from the server's clock (AWS allows the same 15 minutes)."""
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+)\s*,\s*SignedHeaders=(?P<signed>[^,\s]+)\s*,"
    r"\s*Signature=(?P<signature>[0-9a-fA-F]{64})\s*$"
)


@dataclass(frozen=True)
class SignedRequest:
    """What the verifier needs of an incoming request (kept independent of the HTTP framework)."""

    method: str
    raw_path: str
    """The request target as received: path and ``?query``, still percent-encoded."""
    headers: CIMultiDictProxy[str]
    body: bytes


@dataclass(frozen=True)
class Authorization:
    """The parsed ``Authorization`` header."""

    access_key_id: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_authorization(value: str | None) -> Authorization:
    """Split a SigV4 ``Authorization`` header; AccessDeniedException naming what is missing or malformed."""
    if not value:
        raise AccessDeniedException(
            "missing Authorization header: sign requests with AWS Signature Version 4 (service 'lambda') "
            "using an Ember access key"
        )
    if not value.startswith(ALGORITHM):
        raise AccessDeniedException(
            f"unsupported Authorization scheme {value.split(' ', 1)[0][:40]!r}: only {ALGORITHM} (SigV4) is accepted"
        )
    match = _AUTH_RE.match(value)
    if match is None:
        raise AccessDeniedException(
            "malformed Authorization header: expected "
            f"'{ALGORITHM} Credential=<key>/<date>/<region>/lambda/aws4_request, SignedHeaders=<h1;h2>, "
            "Signature=<64 hex digits>'"
        )
    parts = match["credential"].split("/")
    if len(parts) != 5 or parts[4] != "aws4_request" or not all(parts):
        raise AccessDeniedException(
            "malformed Credential in the Authorization header: expected <key>/<yyyymmdd>/<region>/lambda/aws4_request"
        )
    key, date, region, service, _ = parts
    signed = tuple(match["signed"].lower().split(";"))
    return Authorization(key, date, region, service, signed, match["signature"].lower())


def request_time(headers: CIMultiDictProxy[str]) -> tuple[str, datetime]:
    """The signing time (``X-Amz-Date``, else ``Date``) as SigV4's timestamp string and an aware datetime."""
    amz_date = headers.get("X-Amz-Date")
    if amz_date:
        try:
            when = datetime.strptime(amz_date, AMZ_DATE_FORMAT).replace(tzinfo=UTC)
        except ValueError:
            raise AccessDeniedException(
                f"X-Amz-Date {amz_date[:40]!r} is not a SigV4 timestamp (yyyymmddThhmmssZ)"
            ) from None
        return amz_date, when
    date = headers.get("Date")
    if date:
        try:
            when = parsedate_to_datetime(date).astimezone(UTC)
        except (TypeError, ValueError):
            raise AccessDeniedException(f"Date header {date[:40]!r} is not an HTTP date") from None
        return when.strftime(AMZ_DATE_FORMAT), when
    raise AccessDeniedException("missing X-Amz-Date header: a SigV4 request must say when it was signed")


def check_clock(when: datetime, now: datetime, stamp: str) -> None:
    """AccessDeniedException if the request was signed more than ``MAX_CLOCK_SKEW_S`` from ``now``."""
    skew = abs((now - when).total_seconds())
    if skew > MAX_CLOCK_SKEW_S:
        raise AccessDeniedException(
            f"request time {stamp} is {int(skew)} s from the server time {now.strftime(AMZ_DATE_FORMAT)}; "
            f"the maximum difference is {MAX_CLOCK_SKEW_S} s: check the client's clock"
        )


def _split_target(raw_path: str) -> tuple[str, str]:
    path, _, query = raw_path.partition("?")
    return path, query


def _rebuild(
    request: SignedRequest, auth: Authorization, stamp: str, normalized_query: bool
) -> tuple[AWSRequest, SigV4Auth]:
    path, query = _split_target(request.raw_path)
    headers: dict[str, str] = {}
    for name in auth.signed_headers:
        values = request.headers.getall(name, [])
        headers[name] = ",".join(values)
    host = request.headers.get("Host", "localhost")
    url = f"http://{host}{path}"
    params: list[tuple[str, str]] = []
    if query and not normalized_query:
        url += "?" + query
    elif query:
        params = parse_qsl(query, keep_blank_values=True)
    aws_request = AWSRequest(method=request.method, url=url, data=request.body, headers=headers, params=params)
    aws_request.context["timestamp"] = stamp
    return aws_request, SigV4Auth(Credentials(auth.access_key_id, ""), auth.service, auth.region)


def expected_signatures(request: SignedRequest, auth: Authorization, secret: str, stamp: str) -> list[str]:
    """The signatures a correct client could have computed: over the raw query as sent (what botocore signs) and
    over the spec's normalised query encoding (what other SigV4 clients may sign)."""
    out = []
    variants = (False, True) if _split_target(request.raw_path)[1] else (False,)
    for normalized in variants:
        aws_request, signer = _rebuild(request, auth, stamp, normalized)
        signer.credentials = Credentials(auth.access_key_id, secret)
        canonical = signer.canonical_request(aws_request)
        out.append(signer.signature(signer.string_to_sign(aws_request, canonical), aws_request))
    return out


def verify(request: SignedRequest, auth: Authorization, secret: str, *, now: datetime | None = None) -> None:
    """Raise AccessDeniedException unless ``request`` carries a valid SigV4 signature made with ``secret``."""
    if auth.service != SIGNING_SERVICE:
        raise AccessDeniedException(
            f"credential scope names service {auth.service[:40]!r}; sign for service '{SIGNING_SERVICE}'"
        )
    stamp, when = request_time(request.headers)
    if stamp[:8] != auth.date:
        raise AccessDeniedException(
            f"credential scope date {auth.date[:16]!r} does not match the request date {stamp[:8]}"
        )
    check_clock(when, now or datetime.now(UTC), stamp)
    if "host" not in auth.signed_headers:
        raise AccessDeniedException("SignedHeaders must include 'host'")
    declared = request.headers.get("X-Amz-Content-SHA256")
    if declared is not None and not hmac.compare_digest(declared.lower(), hashlib.sha256(request.body).hexdigest()):
        raise AccessDeniedException("the body does not match X-Amz-Content-SHA256 (unsigned payloads are refused)")
    matched = False
    for candidate in expected_signatures(request, auth, secret, stamp):
        matched |= hmac.compare_digest(candidate, auth.signature)
    if not matched:
        raise AccessDeniedException(
            "the request signature does not match: check the secret access key and the signing method "
            "(SigV4, service 'lambda'); the request must not change after it is signed"
        )
