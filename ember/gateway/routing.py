"""Which MicroVM a request is for, what path its app sees, and which paths the gateway refuses outright.

A request names its VM by host (``{id}.{domain}``, when a wildcard domain is configured) or by path
prefix (``/microvms/{id}/...``, stripped before the app sees the request). Paths are checked on their
percent-decoded form, so ``%2e%2e`` and ``%2f`` cannot smuggle a dot segment or a hook path past the
checks: the app may decode and normalise the path, the gateway must not be more lenient than it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from .responses import Refusal

PATH_PREFIX = "/microvms/"
HOOK_PATH_PREFIX = "/aws/lambda-microvms/runtime/"
"""Only the platform calls hooks, from inside the guest (CONTRACT §4, §10)."""
SHELL_PATH = "/.ember/shell"
"""The shell WebSocket (CONTRACT §10); the gateway serves it, the app never sees it."""
MAX_DECODE_ROUNDS = 3
"""Percent-decoding is repeated until stable (up to this many rounds) before looking for dot segments."""

_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
"""A MicroVM id as it can appear in a DNS label or a path segment (``mvm-`` + 32 hex in practice)."""


@dataclass(frozen=True)
class Route:
    """Where a request goes."""

    microvm_id: str
    target: str
    """The request target the app receives (origin-form, prefix stripped)."""
    path: str
    """``target``'s path, percent-decoded; what the policy checks look at."""
    prefix: str
    """``/microvms/{id}`` when path-routed, else ``""`` (sent to the app as ``X-Forwarded-Prefix``)."""


def resolve(host: str | None, target: str, domain: str | None) -> Route:
    """The Route of a request, or a Refusal: 400 for unusable targets and dot segments, 404 when no VM is named."""
    if not target.startswith("/"):
        raise Refusal(400, "bad_target", "the request target must be a path (origin-form)")
    microvm_id = _id_from_host(host, domain) if domain else None
    prefix = ""
    if microvm_id is None:
        microvm_id, target = _id_from_path(target)
        prefix = f"{PATH_PREFIX}{microvm_id}"
    path = check_path(target.partition("?")[0])
    return Route(microvm_id=microvm_id, target=target, path=path, prefix=prefix)


def check_path(raw_path: str) -> str:
    """The decoded path; Refusal(400) if any segment is ``.`` or ``..`` (after decoding) or it holds a NUL."""
    decoded = raw_path
    for _ in range(MAX_DECODE_ROUNDS):
        step = unquote(decoded, errors="replace")
        if step == decoded:
            break
        decoded = step
    if "\x00" in decoded:
        raise Refusal(400, "bad_path", "the path contains a NUL byte")
    for segment in re.split(r"[/\\]", decoded):
        if segment.split(";", 1)[0] in (".", ".."):
            raise Refusal(400, "path_traversal", "dot segments ('.', '..') are not allowed in the path")
    return decoded


def is_hook_path(path: str) -> bool:
    """Whether an app could read ``path`` (decoded) as one of its hook routes."""
    normal = re.sub(r"/+", "/", path.replace("\\", "/")).lower()
    normal = "/".join(segment.split(";", 1)[0] for segment in normal.split("/"))
    return normal.startswith(HOOK_PATH_PREFIX) or normal.rstrip("/") == HOOK_PATH_PREFIX.rstrip("/")


def endpoint_for(microvm_id: str, host: str, port: int, domain: str | None = None) -> str:
    """The endpoint the API returns, without a scheme (CONTRACT §10)."""
    if domain:
        return f"{microvm_id}.{domain.strip('.')}:{port}"
    return f"{host}:{port}{PATH_PREFIX}{microvm_id}"


def _id_from_host(host: str | None, domain: str) -> str | None:
    if not host:
        return None
    name = host.strip().lower()
    if name.startswith("["):
        return None  # an IPv6 literal never carries an id
    name = name.rsplit(":", 1)[0].rstrip(".")
    suffix = "." + domain.strip(".").lower()
    if not name.endswith(suffix):
        return None
    label = name[: -len(suffix)]
    return label if _ID.fullmatch(label) else None


def _id_from_path(target: str) -> tuple[str, str]:
    if not target.startswith(PATH_PREFIX):
        raise Refusal(404, "no_microvm", f"no MicroVM named: use {PATH_PREFIX}<id>/... or the VM's own host name")
    rest = target[len(PATH_PREFIX):]
    end = len(rest)
    for sep in "/?":
        i = rest.find(sep)
        if i != -1:
            end = min(end, i)
    microvm_id, remainder = rest[:end], rest[end:]
    if not _ID.fullmatch(microvm_id):
        raise Refusal(404, "no_microvm", "not a MicroVM id in the path")
    if not remainder.startswith("/"):
        remainder = "/" + remainder
    return microvm_id, remainder
