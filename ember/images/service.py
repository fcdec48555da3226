"""The image-build service: runs each build in an owned background task and records the outcome.

The API creates the image, version and build rows in one transaction, then calls
``schedule(build_id, file_root=…)``. The task fetches and unpacks the artifact, plans the
Dockerfile, runs :class:`ember.images.builder.ImageBuilder`, streams the build
log into the store, and moves the build (hence the version and the image) to
SUCCESSFUL or FAILED with a ``stateReason`` that names the failing step.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

from ember.contract.enums import BuildState, HookState
from ember.contract.images import ImageConfig
from ember.errors import EmberError
from ember.host.host import Host
from ember.store import Store, builds, logs, versions
from ember.store.models import Build, Image, ImageVersion

from .artifact import fetch_artifact, unpack_zip
from .builder import DEFAULT_BUILD_TIMEOUT_S, BuildRequest, ImageBuilder, Readiness
from .dockerfile import check_sources, plan_dockerfile

log = logging.getLogger(__name__)

# Build log lines are written to the store in batches, at most this often.
LOG_FLUSH_INTERVAL_S = 0.5
LOG_OWNER_BUILD = "build"


class BuildLog:
    """Collects build log lines and writes them to the store in batches (and to a file beside the version)."""

    def __init__(self, store: Store, build_id: str, path: Path) -> None:
        self.store = store
        self.build_id = build_id
        self._pending: list[tuple[float, str, str]] = []
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._last_flush = time.monotonic()

    def __call__(self, stream: str, line: str) -> None:
        now = time.time()
        self._pending.append((now, stream, line))
        self._file.write(f"{time.strftime('%H:%M:%S', time.gmtime(now))} [{stream}] {line}\n")
        if time.monotonic() - self._last_flush >= LOG_FLUSH_INTERVAL_S:
            self.flush()

    def flush(self) -> None:
        self._last_flush = time.monotonic()
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        self._file.flush()
        try:
            with self.store.write() as session:
                logs.append_entries(session, LOG_OWNER_BUILD, self.build_id,
                                    [(datetime.fromtimestamp(at, UTC), stream, line) for at, stream, line in batch])
        except Exception:  # the log must never fail the build
            log.exception("build log write failed", extra={"action": "build_log_error", "build_id": self.build_id})

    async def flush_periodically(self) -> None:
        """Flush every LOG_FLUSH_INTERVAL_S even while a long step prints nothing (followers see lines promptly)."""
        while True:
            await asyncio.sleep(LOG_FLUSH_INTERVAL_S)
            if time.monotonic() - self._last_flush >= LOG_FLUSH_INTERVAL_S:
                self.flush()

    def close(self) -> None:
        self.flush()
        self._file.close()


def readiness_of(config: ImageConfig) -> Readiness:
    hooks = config.hooks
    if hooks is None:
        return Readiness()
    image_hooks = hooks.microvmImageHooks
    return Readiness(
        port=hooks.port or Readiness.port,
        ready_hook=bool(image_hooks and image_hooks.ready == HookState.ENABLED),
        ready_timeout_s=float(image_hooks.readyTimeoutInSeconds or 300) if image_hooks else 300.0,
        validate_hook=bool(image_hooks and image_hooks.validate_ == HookState.ENABLED),
        validate_timeout_s=float(image_hooks.validateTimeoutInSeconds or 120) if image_hooks else 120.0,
    )


class ImageService:
    """Owns the build tasks of one ``ember serve``."""

    def __init__(self, store: Store, host: Host, *, images_dir: Path, build_timeout_s: float = DEFAULT_BUILD_TIMEOUT_S,
                 s3_endpoint_url: str | None = None, build_egress: bool = True) -> None:
        self.store = store
        self.host = host
        self.images_dir = images_dir
        self.build_timeout_s = build_timeout_s
        self.s3_endpoint_url = s3_endpoint_url
        self.build_egress = build_egress
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stopping = False

    def version_dir(self, image: Image, version: ImageVersion) -> Path:
        return self.images_dir / image.account_id / image.name / version.version

    def schedule(self, build_id: str, *, file_root: Path | None) -> None:
        """Start building ``build_id`` (already committed as PENDING) in the background.

        ``file_root``: a ``file://`` artifact must lie under this folder (the API passes the caller's own
        upload folder); None lets it be any local file the server can read (library use, tests). It has no
        default on purpose: every caller states which files a build may read, so none opens the host's by omission.
        """
        if self._stopping or build_id in self._tasks:
            return
        task = asyncio.get_running_loop().create_task(self._run(build_id, file_root), name=f"build-{build_id}")
        self._tasks[build_id] = task
        task.add_done_callback(lambda _t: self._tasks.pop(build_id, None))

    async def wait_idle(self) -> None:
        """Wait until no build runs (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    def recover(self) -> int:
        """Builds a previous process left unfinished cannot resume: mark them FAILED, saying why."""
        n = 0
        with self.store.write() as session:
            for build in session.query(Build).filter(Build.state.in_([BuildState.PENDING, BuildState.IN_PROGRESS])):
                if build.state is BuildState.PENDING:
                    builds.set_build_state(session, build, BuildState.IN_PROGRESS)
                builds.set_build_state(session, build, BuildState.FAILED,
                                       "the build was interrupted by a restart of ember serve; update the image "
                                       "to build again")
                n += 1
        return n

    async def stop(self) -> None:
        """Cancel running builds (they are marked FAILED) and wait for them; idempotent."""
        self._stopping = True
        for task in list(self._tasks.values()):
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def _run(self, build_id: str, file_root: Path | None) -> None:
        with self.store.write() as session:
            build = builds.find_build(session, build_id)
            if build is None:
                return
            version = versions.get_version_by_id(session, build.version_id)
            image = session.get(Image, version.image_id)
            assert image is not None
            config = versions.version_config(version)
            out_dir = self.version_dir(image, version)
            memory_mib = version.memory_mib
            builds.set_build_state(session, build, BuildState.IN_PROGRESS)
        shutil.rmtree(out_dir, ignore_errors=True)
        out_dir.mkdir(parents=True)
        build_log = BuildLog(self.store, build_id, out_dir / "build.log")
        flusher = asyncio.get_running_loop().create_task(build_log.flush_periodically(), name=f"build-log-{build_id}")
        t0 = time.monotonic()
        try:
            result = await self._build(config, out_dir, memory_mib, build_log, file_root)
        except asyncio.CancelledError:
            build_log("build", "cancelled: ember serve is stopping")
            self._finish(build_id, BuildState.FAILED, "the build was cancelled because ember serve stopped")
            shutil.rmtree(out_dir, ignore_errors=True)
            raise
        except EmberError as exc:
            build_log("build", f"FAILED: {exc}")
            self._finish(build_id, BuildState.FAILED, str(exc))
            _remove_except_log(out_dir)
            return
        except Exception as exc:
            log.exception("build crashed", extra={"action": "build_crash", "build_id": build_id})
            build_log("build", f"FAILED: internal error: {type(exc).__name__}: {exc}")
            self._finish(build_id, BuildState.FAILED, f"internal error: {type(exc).__name__}: {exc}")
            _remove_except_log(out_dir)
            return
        finally:
            flusher.cancel()
            build_log.close()
        with self.store.write() as session:
            build = builds.find_build(session, build_id)
            assert build is not None
            version = versions.get_version_by_id(session, build.version_id)
            versions.set_version_artifact_dir(session, version, str(out_dir))
            builds.set_build_state(session, build, BuildState.SUCCESSFUL,
                                   memory_snapshot_size_bytes=result.memory_bytes,
                                   disk_snapshot_size_bytes=result.disk_bytes,
                                   code_install_size_bytes=result.code_bytes)
        log.info("build done", extra={"action": "build_success", "build_id": build_id,
                                      "seconds": round(time.monotonic() - t0, 1)})

    async def _build(self, config: ImageConfig, out_dir: Path, memory_mib: int, build_log: BuildLog,  # type: ignore[no-untyped-def]
                     file_root: Path | None):
        build_log("build", f"fetching {config.codeArtifact.uri}")
        zip_path = await asyncio.to_thread(fetch_artifact, config.codeArtifact.uri, out_dir / "artifact.zip",
                                           s3_endpoint_url=self.s3_endpoint_url, file_root=file_root)
        report = await asyncio.to_thread(unpack_zip, zip_path, out_dir / "context")
        zip_path.unlink(missing_ok=True)
        build_log("build", f"artifact: {report.files} files, {report.total_bytes} bytes")
        context = out_dir / "context"
        plan = plan_dockerfile((context / "Dockerfile").read_text(errors="replace"))
        check_sources(plan, context)
        request = BuildRequest(context=context, plan=plan, out_dir=out_dir, memory_mib=memory_mib,
                               environment=dict(config.environmentVariables or {}),
                               readiness=readiness_of(config), egress=self.build_egress,
                               timeout_s=self.build_timeout_s)
        result = await ImageBuilder(self.host, build_log).build(request)
        shutil.rmtree(context, ignore_errors=True)
        return result

    def _finish(self, build_id: str, state: BuildState, reason: str | None) -> None:
        with contextlib.suppress(Exception), self.store.write() as session:
            build = builds.find_build(session, build_id)
            if build is not None and build.state not in (BuildState.SUCCESSFUL, BuildState.FAILED):
                builds.set_build_state(session, build, state, reason)


def _remove_except_log(out_dir: Path) -> None:
    """A failed version keeps only its build log."""
    for child in out_dir.iterdir():
        if child.name != "build.log":
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
