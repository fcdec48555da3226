"""The data plane: each MicroVM's HTTPS endpoint, from token check to bytes spliced into the guest.

``Gateway`` is the server; ``mint_token``/``verify_token`` are the endpoint tokens the API hands out;
``GatewayCertificates`` is the TLS material. ``backend.GatewayBackend`` is the seam to the lifecycle,
and ``testing.FakeBackend`` a fake of it for tests. docs/gateway.md describes the design.
"""

from .backend import GatewayBackend, Unavailable, VmTarget
from .server import DEFAULT_APP_PORT, DEFAULT_HOST, DEFAULT_PORT, Gateway
from .tls import GatewayCertificates, ca_path
from .tokens import TOKEN_HEADER, TokenClaims, TokenRefused, mint_token, verify_token

__all__ = [
    "DEFAULT_APP_PORT",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "TOKEN_HEADER",
    "Gateway",
    "GatewayBackend",
    "GatewayCertificates",
    "TokenClaims",
    "TokenRefused",
    "Unavailable",
    "VmTarget",
    "ca_path",
    "mint_token",
    "verify_token",
]
