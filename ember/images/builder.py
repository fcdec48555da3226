"""From an unpacked artifact to an image snapshot: build VMs, init VM, readiness, snapshot, validate.

1. Each stage the image needs boots a **build VM** on its base (a managed base, or
   an earlier stage's frozen disk) with egress, and runs its steps in order.
2. The final stage's disk is frozen. An **init VM** boots it without egress, starts
   the app (ENTRYPOINT/CMD, ENV, WORKDIR, USER, the image's environment), and
   waits for readiness: the ``ready`` hook (503 = not yet) when enabled, else the
   app port answering HTTP.
3. The init VM becomes the image snapshot. With ``validate`` enabled a clone is
   started from it and must answer the hook with 200.

Every VM is destroyed on the way out, success or not; a failure raises
:class:`BuildFailed` whose message is the version's ``stateReason``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ember.errors import AgentError, AgentOpError, EmberError, HostError
from ember.host.guest_http import call_hook, guest_request
from ember.host.host import VM, Host, ImageSnapshot

from . import bases
from .dockerfile import BaseKind, BuildPlan, CopyStep, ImageConfig, RunStep, WorkdirStep
from .steps import DEFAULT_PATH, StepFailed, copy_from_context, copy_from_stage, resolve_user, run_step

DEFAULT_APP_PORT = 8080
DEFAULT_BUILD_TIMEOUT_S = 1800.0
READY_POLL_INTERVAL_S = 0.5
# Where the host's CA bundle goes for RUN steps: /run is a tmpfs, so it never reaches the image's disk.
BUILD_CA_PATH = "/run/ember-build/ca-certificates.crt"
HOST_EXTRA_CA_DIR = Path("/usr/local/share/ca-certificates")
CA_ENV_VARS = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "PIP_CERT", "NODE_EXTRA_CA_CERTS", "CURL_CA_BUNDLE")

LogFn = Callable[[str, str], None]  # (stream, line)


class BuildFailed(EmberError):
    """The build did not produce an image; the message says which step and why."""


@dataclass(frozen=True)
class Readiness:
    """How the platform decides the app is ready and valid (from the image's hooks)."""

    port: int = DEFAULT_APP_PORT
    ready_hook: bool = False
    ready_timeout_s: float = 300.0
    validate_hook: bool = False
    validate_timeout_s: float = 120.0


@dataclass(frozen=True)
class BuildRequest:
    context: Path
    plan: BuildPlan
    out_dir: Path
    memory_mib: int = 512
    environment: dict[str, str] = field(default_factory=dict)
    readiness: Readiness = Readiness()
    egress: bool = True
    timeout_s: float = DEFAULT_BUILD_TIMEOUT_S
    extra_ca_bundle: Path | None = None


@dataclass(frozen=True)
class BuildResult:
    snapshot: ImageSnapshot
    config: ImageConfig
    disk_bytes: int
    memory_bytes: int
    code_bytes: int
    seconds: float


def host_ca_bundle(extra: Path | None = None) -> bytes:
    """The host's extra trusted CAs (or a configured bundle), PEM-concatenated."""
    parts: list[bytes] = []
    if extra is not None:
        parts.append(extra.read_bytes())
    elif HOST_EXTRA_CA_DIR.is_dir():
        for cert in sorted(HOST_EXTRA_CA_DIR.rglob("*.crt")):
            parts.append(cert.read_bytes())
    return b"\n".join(p.strip() + b"\n" for p in parts)


def _tree_bytes(root: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(root):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


class ImageBuilder:
    """Builds images on one Host."""

    def __init__(self, host: Host, log: LogFn) -> None:
        self.host = host
        self.log = log
        self._vms: list[VM] = []

    async def build(self, req: BuildRequest) -> BuildResult:
        t0 = time.monotonic()
        req.out_dir.mkdir(parents=True, exist_ok=True)
        try:
            async with asyncio.timeout(req.timeout_s):
                return await self._build(req, t0)
        except TimeoutError:
            raise BuildFailed(f"the build took longer than its time limit of {req.timeout_s:.0f} s") from None
        except StepFailed as exc:
            raise BuildFailed(str(exc)) from None
        finally:
            for vm in self._vms:
                with contextlib.suppress(Exception):
                    await self.host.destroy(vm)
            self._vms.clear()

    async def _boot(self, rootfs: Path, memory_mib: int, egress: bool) -> VM:
        try:
            vm = await self.host.boot(rootfs, memory_mib=memory_mib, egress=egress)
        except HostError as exc:
            if not egress:
                raise
            # Egress needs root; a build without network steps still works, and one with them fails saying why.
            self.log("build", f"no network for build steps: {exc}")
            vm = await self.host.boot(rootfs, memory_mib=memory_mib)
        self._vms.append(vm)
        return vm

    # -- stages ----------------------------------------------------------
    async def _build(self, req: BuildRequest, t0: float) -> BuildResult:
        plan = req.plan
        needed = plan.required_stages()
        final = needed[-1]
        ca = host_ca_bundle(req.extra_ca_bundle)
        stage_vms: dict[int, VM] = {}
        frozen: dict[int, Path] = {}
        users_of = {s.base.stage_index for s in needed if s.base.kind == BaseKind.STAGE}
        for stage in needed:
            self.log("build", f"stage {stage.index}{f' ({stage.name})' if stage.name else ''}: FROM {stage.base.ref}")
            rootfs = await self._stage_base(stage.base, stage.line, stage_vms, frozen, req.out_dir)
            vm = await self._boot(rootfs, req.memory_mib, req.egress)
            agent = vm.require_agent()
            extra_env: dict[str, str] = {}
            if ca:
                await agent.exec(["mkdir", "-p", os.path.dirname(BUILD_CA_PATH)])
                system = await agent.exec(["cat", "/etc/ssl/certs/ca-certificates.crt"])
                await agent.put_file(BUILD_CA_PATH, (system.stdout if system.ok else b"") + ca)
                extra_env = dict.fromkeys(CA_ENV_VARS, BUILD_CA_PATH)
            for step in stage.steps:
                self.log("build", f"line {step.line}: {step.text}")
                if isinstance(step, RunStep):
                    await run_step(agent, step, self.log, extra_env)
                elif isinstance(step, CopyStep):
                    if step.from_stage is not None:
                        src_vm = stage_vms.get(step.from_stage)
                        if src_vm is None:
                            raise StepFailed(step.line, step.instruction, f"stage {step.from_stage} is not available")
                        await copy_from_stage(src_vm.require_agent(), agent, step)
                    else:
                        await copy_from_context(agent, step, req.context)
                elif isinstance(step, WorkdirStep):
                    await agent.exec(["mkdir", "-p", step.path])
            stage_vms[stage.index] = vm
            if stage.index in users_of and stage is not final:
                frozen[stage.index] = await self._freeze(vm, req.out_dir / f"stage-{stage.index}.qcow2")
        build_disk = await self._freeze(stage_vms[final.index], req.out_dir / "build.qcow2")
        for vm in stage_vms.values():
            await self.host.destroy(vm)
        snapshot = await self._init_and_snapshot(req, final.config, build_disk)
        if req.readiness.validate_hook:
            await self._validate(req, snapshot)
        return BuildResult(snapshot=snapshot, config=final.config,
                           disk_bytes=_allocated(build_disk) + snapshot.disk_bytes,
                           memory_bytes=snapshot.memory_bytes + snapshot.state_bytes,
                           code_bytes=_tree_bytes(req.context), seconds=time.monotonic() - t0)

    async def _stage_base(self, base, line: int, stage_vms: dict[int, VM],  # type: ignore[no-untyped-def]
                          frozen: dict[int, Path], out_dir: Path) -> Path:
        if base.kind == BaseKind.MANAGED:
            return (await asyncio.to_thread(bases.ensure_base, base.name, None,
                                            lambda msg: self.log("build", msg))).rootfs
        if base.kind == BaseKind.STAGE and base.stage_index in frozen:
            return frozen[base.stage_index]
        available = ", ".join(f"{n} ({', '.join(m.aliases)})" for n, m in _managed().items())
        if base.kind == BaseKind.SCRATCH:
            raise StepFailed(line, "FROM", f"FROM scratch is not supported; available bases: {available}")
        raise StepFailed(line, "FROM", f"{base.ref}: no container registry is reachable from this host, "
                                       f"so only managed bases can be used: {available}")

    async def _freeze(self, vm: VM, dest: Path) -> Path:
        """Stop ``vm`` cleanly and keep its disk as a frozen layer at ``dest``."""
        await vm.require_agent().exec(["sync"])
        return await self.host.freeze_disk(vm, dest)

    # -- init, readiness, validate ---------------------------------------
    async def _init_and_snapshot(self, req: BuildRequest, config: ImageConfig, disk: Path) -> ImageSnapshot:
        argv = list(config.argv)
        if not argv:
            raise BuildFailed("the image has no ENTRYPOINT or CMD: nothing to start")
        vm = await self._boot(disk, req.memory_mib, egress=False)
        agent = vm.require_agent()
        try:
            uid, gid, home = await resolve_user(agent, config.user)
        except EmberError as exc:
            raise BuildFailed(f"USER {config.user}: {exc}") from None
        env = {"PATH": DEFAULT_PATH, "HOME": home, **dict(config.env), **req.environment}
        self.log("build", f"starting the app: {' '.join(argv)}")
        try:
            await agent.app_start(argv, env=env, cwd=config.workdir, uid=uid, gid=gid)
        except AgentOpError as exc:
            raise BuildFailed(f"the app did not start ({' '.join(argv)}): {exc.code}: {exc}") from None
        follower = asyncio.create_task(self._forward_app_logs(vm))
        try:
            await self._wait_ready(vm, req.readiness)
        finally:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await follower
        self.log("build", "app ready: taking the image snapshot")
        snapshot = await self.host.snapshot_image(vm, req.out_dir / "snapshot")
        self._vms.remove(vm)
        return snapshot

    async def _forward_app_logs(self, vm: VM) -> None:
        async for line in vm.require_agent().app_logs(follow=True):
            self.log(f"app-{line.get('stream', 'stdout')}", str(line.get("line", "")))

    async def _wait_ready(self, vm: VM, r: Readiness) -> None:
        agent = vm.require_agent()
        deadline = time.monotonic() + r.ready_timeout_s
        last = "no answer yet"
        while True:
            status = await agent.app_status()
            if not status.get("running"):
                raise BuildFailed(f"the app exited during init (exit {status.get('exit')}, signal "
                                  f"{status.get('signal')}) before it was ready; see the build log")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                what = "ready hook" if r.ready_hook else f"port {r.port}"
                raise BuildFailed(f"the app was not ready within {r.ready_timeout_s:.0f} s ({what}: {last})")
            try:
                if r.ready_hook:
                    resp = await call_hook(agent, r.port, "ready", timeout=remaining)
                    if resp.status == 200:
                        return
                    if resp.status != 503:
                        raise BuildFailed(f"the ready hook answered {resp.status} (200 = ready, 503 = not yet)")
                    last = "503 not ready"
                else:
                    resp = await guest_request(agent, r.port, "GET", "/", timeout=remaining)
                    return
            except AgentOpError as exc:
                last = exc.code
            except AgentError as exc:
                if time.monotonic() >= deadline:
                    raise BuildFailed(
                        f"the ready hook was still open at the {r.ready_timeout_s:.0f} s timeout") from None
                last = str(exc)
            await asyncio.sleep(READY_POLL_INTERVAL_S)

    async def _validate(self, req: BuildRequest, snapshot: ImageSnapshot) -> None:
        self.log("build", "validating: starting a VM from the new snapshot")
        vm = await self.host.clone(snapshot)
        self._vms.append(vm)
        try:
            resp = await call_hook(vm.require_agent(), req.readiness.port, "validate",
                                   timeout=req.readiness.validate_timeout_s)
        except AgentError as exc:
            raise BuildFailed(f"the validate hook did not answer: {exc}") from None
        if resp.status != 200:
            raise BuildFailed(f"the validate hook answered {resp.status}; the version is rejected")
        await self.host.destroy(vm)
        self._vms.remove(vm)


def _allocated(path: Path) -> int:
    return os.stat(path).st_blocks * 512


def _managed():  # type: ignore[no-untyped-def]
    from .dockerfile import MANAGED_BASES

    return MANAGED_BASES


__all__ = ["BuildFailed", "BuildRequest", "BuildResult", "ImageBuilder", "Readiness"]
