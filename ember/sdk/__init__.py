"""Ember's Python SDK: a typed client for the control-plane API and for MicroVM endpoints, sync and async.

``Client``/``AsyncClient`` sign every call with SigV4 (service ``lambda``) and return the contract's
pydantic models (``ember.contract``); errors are the typed exceptions of ``ember.sdk.errors``.
``client.images`` builds and inspects images, ``client.microvms`` runs and manages MicroVMs, and a
``Microvm`` handle reaches one VM's endpoint through the gateway (tokens minted and cached for you).
This package talks to Ember only over HTTP, like any other client: it imports nothing from the server.

Names are imported on first use, so ``import ember.sdk.errors`` (or the CLI's ``--help``) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import errors
    from .client import AsyncClient, Client
    from .config import Credentials
    from .endpoint import AsyncMicrovm, Microvm
    from .errors import (
        ApiError,
        ConflictException,
        ResourceNotFoundException,
        SdkError,
        ValidationException,
        WaitFailed,
        WaitTimeout,
    )
    from .hooks import HOOK_NAMES
    from .logs import LogLine
    from .tokens import RetryPolicy

_EXPORTS = {
    "ApiError": "errors",
    "AsyncClient": "client",
    "AsyncMicrovm": "endpoint",
    "Client": "client",
    "ConflictException": "errors",
    "Credentials": "config",
    "HOOK_NAMES": "hooks",
    "LogLine": "logs",
    "Microvm": "endpoint",
    "ResourceNotFoundException": "errors",
    "RetryPolicy": "tokens",
    "SdkError": "errors",
    "ValidationException": "errors",
    "WaitFailed": "errors",
    "WaitTimeout": "errors",
}

__all__ = [
    "HOOK_NAMES",
    "ApiError",
    "AsyncClient",
    "AsyncMicrovm",
    "Client",
    "ConflictException",
    "Credentials",
    "LogLine",
    "Microvm",
    "ResourceNotFoundException",
    "RetryPolicy",
    "SdkError",
    "ValidationException",
    "WaitFailed",
    "WaitTimeout",
    "errors",
]


def __getattr__(name: str) -> Any:
    if name == "errors":
        return importlib.import_module(".errors", __name__)
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ember.sdk' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
