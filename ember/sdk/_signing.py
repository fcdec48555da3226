"""SigV4 signing of API requests with botocore's own signer, so Ember sees exactly what boto3 would send.

URLs are built here too, encoded the way botocore's rest-json serializer encodes them: each path parameter
percent-encoded with only ``-_.~`` left bare (an ARN's ``:`` becomes ``%3A``), query keys and values the
same way. SigV4 then encodes the path once more for the canonical request, as it does for every service
but S3; the server recomputes it the same way.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from .config import SERVICE_NAME, Credentials

_SAFE = "-_.~"


def quote(value: object) -> str:
    """Percent-encode ``value`` as one URL component (path segment or query key/value)."""
    return urllib.parse.quote(str(value), safe=_SAFE)


def build_path(template: str, **params: object) -> str:
    """``template`` with each ``{name}`` replaced by its percent-encoded parameter."""
    return template.format(**{name: quote(value) for name, value in params.items()})


def build_url(endpoint: str, path: str, query: Mapping[str, object] | None = None) -> str:
    """``endpoint + path`` plus the query (None values dropped; booleans as ``true``/``false``)."""
    pairs = []
    for key, value in (query or {}).items():
        if value is None:
            continue
        text = ("true" if value else "false") if isinstance(value, bool) else value
        pairs.append(f"{quote(key)}={quote(text)}")
    return endpoint + path + ("?" + "&".join(pairs) if pairs else "")


def sign(method: str, url: str, headers: Mapping[str, str], body: bytes | None, credentials: Credentials,
         region: str, service: str = SERVICE_NAME) -> dict[str, str]:
    """``headers`` plus ``X-Amz-Date``, ``Authorization`` (and ``X-Amz-Security-Token``) for this request."""
    request = AWSRequest(method=method.upper(), url=url, data=body or b"", headers=dict(headers))
    boto_credentials = BotoCredentials(credentials.access_key_id, credentials.secret_access_key,
                                       credentials.session_token)
    SigV4Auth(boto_credentials, service, region).add_auth(request)
    return {key: value for key, value in request.headers.items()}
