"""Everything an API handler may use, built once by ``ember serve`` (ember.server)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ember.images.service import ImageService
from ember.lifecycle.service import MicrovmService
from ember.store import Store

DEFAULT_REGION = "us-east-1"
# The contract's lower bound for maxIdleDurationSeconds; a server setting may lower it for tests only.
CONTRACT_MIN_IDLE_S = 60


@dataclass(frozen=True)
class Quotas:
    """Per-account limits (server settings)."""

    max_microvms: int = 50  # non-terminated MicroVMs
    max_memory_mib: int = 64 * 1024  # RUNNING + SUSPENDED + PENDING memory
    run_per_second: float = 5.0  # RunMicrovm calls
    run_burst: int = 10
    max_images: int = 100
    max_artifacts: int = 100  # uploaded zips kept (``POST /ember/artifacts``), uploads in flight included
    max_artifact_storage_bytes: int = 5 * 1024**3  # their bytes, in-flight uploads' declared or received bytes too
    max_concurrent_uploads: int = 2  # uploads of one account streaming at the same time


@dataclass
class ApiContext:
    store: Store
    images: ImageService
    microvms: MicrovmService
    endpoint_for: Callable[[str], str]
    """The endpoint of a MicroVM id, without scheme (``{host}:{port}/microvms/{id}`` or ``{id}.{domain}:{port}``)."""
    token_secret: bytes
    region: str = DEFAULT_REGION
    architecture: str = "X86_64"
    """The architecture builds and VMs run on here (CONTRACT §10); ARM_64 requests are refused unless mapped."""
    map_arm64: bool = False
    quotas: Quotas = field(default_factory=Quotas)
    min_idle_s: int = CONTRACT_MIN_IDLE_S
    artifacts_dir: Path | None = None
    """Uploaded code artifacts, ``<dir>/<accountId>/<sha256>.zip`` (``ember.api.artifacts``); None: no uploads, and
    so no ``file://`` code artifact is accepted from any request."""
