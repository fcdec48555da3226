"""Fakes for testing code above the API without VMs: image and MicroVM services that only move store rows.

``FakeImageService`` records scheduled builds and, with ``auto_succeed``, finishes them at once (so the version
becomes SUCCESSFUL and ACTIVE); ``finish(build_id, ok)`` finishes one by hand. ``FakeMicrovmService`` records
launches and moves MicroVM rows through the real state machine (``ember.store.transitions``) the way the
lifecycle service would, instantly. ``ApiServer`` runs ``create_app(ctx)`` on 127.0.0.1 in a thread of its own,
so blocking clients (boto3) can call it from the test's thread. None of this boots a VM: tests that claim VM
behaviour use the real services.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from ember.api.context import ApiContext, Quotas
from ember.contract.enums import BuildState, MicrovmState
from ember.store import Store, accounts, builds, microvms, transitions, versions
from ember.store.errors import IllegalTransition
from ember.store.models import Image, ImageVersion

S = MicrovmState


@dataclass
class FakeImageService:
    """Stands in for ``ember.images.service.ImageService``: no build runs, rows move on request."""

    store: Store
    images_dir: Path
    auto_succeed: bool = True
    scheduled: list[str] = field(default_factory=list)
    file_roots: dict[str, Path | None] = field(default_factory=dict)

    def version_dir(self, image: Image, version: ImageVersion) -> Path:
        """Where the real service keeps a version's files."""
        return self.images_dir / image.account_id / image.name / version.version

    def schedule(self, build_id: str, *, file_root: Path | None) -> None:
        """Record the build (and the folder a file:// artifact was held to); finish it at once when ``auto_succeed``."""
        self.scheduled.append(build_id)
        self.file_roots[build_id] = file_root
        if self.auto_succeed:
            self.finish(build_id, ok=True)

    def finish(self, build_id: str, *, ok: bool, reason: str = "step 2/3 RUN exited with status 1") -> None:
        """Move the build to SUCCESSFUL (version ACTIVE, artifact dir recorded) or FAILED with ``reason``."""
        with self.store.write() as session:
            build = builds.find_build(session, build_id)
            assert build is not None, build_id
            if build.state is BuildState.PENDING:
                builds.set_build_state(session, build, BuildState.IN_PROGRESS)
            version = versions.get_version_by_id(session, build.version_id)
            if ok:
                image = session.get(Image, version.image_id)
                assert image is not None
                versions.set_version_artifact_dir(session, version, str(self.version_dir(image, version)))
                builds.set_build_state(
                    session,
                    build,
                    BuildState.SUCCESSFUL,
                    memory_snapshot_size_bytes=1 << 20,
                    disk_snapshot_size_bytes=2 << 20,
                    code_install_size_bytes=4096,
                )
            else:
                builds.set_build_state(session, build, BuildState.FAILED, reason)

    async def stop(self) -> None:
        """Nothing runs."""


@dataclass
class FakeMicrovmService:
    """Stands in for ``ember.lifecycle.service.MicrovmService``: state moves happen in the store at once.

    ``auto_run``: a launched MicroVM goes PENDING → RUNNING immediately. Calls are recorded in ``calls`` as
    ``(operation, microvm_id)``.
    """

    store: Store
    auto_run: bool = True
    calls: list[tuple[str, str]] = field(default_factory=list)

    def _move(
        self,
        microvm_id: str,
        to: MicrovmState,
        reason: str | None = None,
        *,
        account_id: str | None = None,
        expect: MicrovmState | None = None,
        started_at: datetime | None = None,
    ) -> None:
        with self.store.write() as session:
            transitions.transition(
                session, microvm_id, to, reason, account_id=account_id, expect_from=expect, started_at=started_at
            )

    def launch(self, microvm_id: str) -> None:
        """Record the launch; with ``auto_run`` the MicroVM is RUNNING at once."""
        self.calls.append(("launch", microvm_id))
        if self.auto_run:
            self._move(microvm_id, S.RUNNING, expect=S.PENDING)

    def request_suspend(self, account_id: str, microvm_id: str, reason: str | None = None) -> None:
        """RUNNING → SUSPENDING → SUSPENDED (IllegalTransition from any other state)."""
        self.calls.append(("suspend", microvm_id))
        self._move(microvm_id, S.SUSPENDING, reason, account_id=account_id, expect=S.RUNNING)
        self._move(microvm_id, S.SUSPENDED, reason)

    def request_resume(self, account_id: str, microvm_id: str) -> None:
        """SUSPENDED → RUNNING (IllegalTransition from any other state)."""
        self.calls.append(("resume", microvm_id))
        with self.store.read() as session:
            row = microvms.get_microvm(session, account_id, microvm_id)
            if row.state is not S.SUSPENDED:
                raise IllegalTransition(microvm_id, row.state, S.RUNNING)
        self._move(microvm_id, S.RUNNING, account_id=account_id, expect=S.SUSPENDED, started_at=datetime.now(UTC))

    def request_terminate(self, account_id: str | None, microvm_id: str, reason: str | None = None) -> None:
        """→ TERMINATING → TERMINATED; a MicroVM already ending is left alone."""
        self.calls.append(("terminate", microvm_id))
        with self.store.read() as session:
            row = (
                microvms.get_microvm(session, account_id, microvm_id)
                if account_id
                else microvms.find_microvm(session, microvm_id, account_id=None)
            )
            if row is None or row.state in (S.TERMINATING, S.TERMINATED):
                return
        self._move(microvm_id, S.TERMINATING, reason or "TerminateMicrovm")
        self._move(microvm_id, S.TERMINATED, reason or "TerminateMicrovm")

    async def stop(self) -> None:
        """Nothing runs."""


def make_context(
    store: Store,
    images_dir: Path,
    *,
    token_secret: bytes = b"test-token-secret-0123456789abcdef",
    quotas: Quotas | None = None,
    **overrides: Any,
) -> ApiContext:
    """An ``ApiContext`` over ``store`` with fake services (``ctx.images`` / ``ctx.microvms`` are the fakes).

    Uploaded artifacts go to ``artifacts`` beside ``images_dir`` unless ``artifacts_dir`` is given.
    """
    overrides.setdefault("artifacts_dir", images_dir.parent / "artifacts")
    return ApiContext(
        store=store,
        images=FakeImageService(store, images_dir),  # type: ignore[arg-type]
        microvms=FakeMicrovmService(store),  # type: ignore[arg-type]
        endpoint_for=lambda microvm_id: f"127.0.0.1:9443/microvms/{microvm_id}",
        token_secret=token_secret,
        quotas=quotas or Quotas(),
        **overrides,
    )


def add_account(store: Store, account_id: str, access_key_id: str, secret_access_key: str) -> None:
    """Create ``account_id`` with one access key."""
    with store.write() as session:
        accounts.add_access_key(session, account_id, access_key_id, secret_access_key)


class ApiServer:
    """``create_app(ctx)`` served on 127.0.0.1:<free port> from a thread with its own event loop."""

    def __init__(self, ctx: ApiContext, app_factory: Callable[[ApiContext], web.Application] | None = None) -> None:
        self.ctx = ctx
        self._factory = app_factory
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="ember-api-test", daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ApiServer:
        """Start serving; returns self."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=30)
        return self

    async def _start(self) -> None:
        from ember.api.app import create_app

        app = (self._factory or create_app)(self.ctx)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = int(self._runner.addresses[0][1])

    def stop(self) -> None:
        """Stop serving and end the thread (idempotent)."""
        if self._runner is None:
            return
        runner, self._runner = self._runner, None
        asyncio.run_coroutine_threadsafe(runner.cleanup(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
