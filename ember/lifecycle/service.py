"""MicroVM lifecycle: launch, suspend, resume and terminate, timers, hooks, logs and recovery.

The stored state machine (``ember.store.transitions``) is the truth; this
service drives the host to match it. Every VM has one owned operation task at
a time (launch, suspend or resume) under a per-VM lock; terminate cancels that
task first, so a terminate during a resume wins. Requests from the gateway
hold while a VM is PENDING or resuming (one resume however many wait).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ember.contract.enums import HookState, MicrovmState, NetworkConnectorName
from ember.contract.images import ImageConfig
from ember.errors import EmberError, NotFound
from ember.gateway.backend import Unavailable, VmTarget
from ember.host.agent_client import AgentClient
from ember.host.guest_http import call_hook
from ember.host.host import VM, Host, ImageSnapshot
from ember.store import Store, microvms, transitions, versions
from ember.store.errors import IllegalTransition, RecordNotFound
from ember.store.models import Microvm

from .logpump import LogPump
from .policy import Due, decide

log = logging.getLogger(__name__)

S = MicrovmState
TICK_S = 1.0
# Activity is written to the store at most this often per VM (the idle clock survives a restart).
ACTIVITY_FLUSH_S = 5.0
# How long ember serve's shutdown may spend suspending running VMs so they survive the restart.
SHUTDOWN_SUSPEND_TIMEOUT_S = 120.0
DEFAULT_HOOK_TIMEOUT_S = {"run": 60, "resume": 60, "suspend": 30, "terminate": 30}


def utcnow() -> datetime:
    return datetime.now(UTC)


def _utc(epoch_s: float) -> datetime:
    """A UTC epoch time as the store's (aware, UTC) datetime."""
    return datetime.fromtimestamp(epoch_s, UTC)


@dataclass
class HookConfig:
    port: int = 8080
    enabled: dict[str, bool] = field(default_factory=dict)
    timeout_s: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, config: ImageConfig) -> HookConfig:
        hooks = config.hooks
        cfg = cls(port=(hooks.port if hooks and hooks.port else 8080))
        mh = hooks.microvmHooks if hooks else None
        for name, default in DEFAULT_HOOK_TIMEOUT_S.items():
            cfg.enabled[name] = bool(mh and getattr(mh, name) == HookState.ENABLED)
            cfg.timeout_s[name] = float((getattr(mh, f"{name}TimeoutInSeconds", None) if mh else None) or default)
        return cfg


@dataclass
class _Live:
    """What this process knows about one non-terminated MicroVM."""

    id: str
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    vm: VM | None = None
    hooks: HookConfig = field(default_factory=HookConfig)
    op: asyncio.Task[None] | None = None
    running: asyncio.Event = field(default_factory=asyncio.Event)
    open_connections: int = 0
    last_activity: float = field(default_factory=time.time)
    activity_flushed: float = 0.0
    pump: LogPump | None = None


class MicrovmService:
    """Owns every MicroVM of one ``ember serve``; implements the gateway's backend too."""

    def __init__(self, store: Store, host: Host, *, token_secret: bytes, tick_s: float = TICK_S) -> None:
        self.store = store
        self.host = host
        self.token_secret = token_secret
        self.tick_s = tick_s
        self._live: dict[str, _Live] = {}
        self._timer: asyncio.Task[None] | None = None
        self._stopping = False
        # Restores compete for the CPUs; more at once than there are cores only delays every one of them.
        self._launch_slots = asyncio.Semaphore(max(1, os.cpu_count() or 1))
        self.on_change: Callable[[str], None] | None = None
        host._on_exit = self._vm_exited

    # -- start and stop --------------------------------------------------
    async def start(self) -> dict[str, int]:
        """Reconcile stored VMs with this host, then start the timers; counts of what reconcile did."""
        from .reconcile import reconcile

        counts = await reconcile(self)
        self._timer = asyncio.get_running_loop().create_task(self._timers(), name="microvm-timers")
        return counts

    async def stop(self) -> None:
        """Suspend running VMs (so they survive the restart), stop the timers; idempotent."""
        if self._stopping:
            return
        self._stopping = True
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
        ops = [live.op for live in self._live.values() if live.op is not None]
        for op in ops:
            op.cancel()
        await asyncio.gather(*ops, return_exceptions=True)
        running = [live for live in self._live.values() if live.vm is not None and live.vm.alive]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SHUTDOWN_SUSPEND_TIMEOUT_S):
                for live in running:
                    with contextlib.suppress(Exception):
                        self._move(live.id, S.SUSPENDING, "ember serve is stopping", expect=S.RUNNING)
                        await self._do_suspend(live, "suspended because ember serve stopped")
        for live in self._live.values():
            if live.pump is not None:
                await live.pump.stop()
        await self.host.close(keep_suspended=True)

    # -- helpers ---------------------------------------------------------
    def live(self, microvm_id: str) -> _Live:
        live = self._live.get(microvm_id)
        if live is None:
            live = self._live[microvm_id] = _Live(microvm_id)
        return live

    def _move(self, microvm_id: str, to: MicrovmState, reason: str | None = None, *,
              expect: MicrovmState | frozenset[MicrovmState] | None = None,
              started_at: datetime | None = None) -> Microvm:
        with self.store.write() as session:
            row = transitions.transition(session, microvm_id, to, reason, expect_from=expect, started_at=started_at)
        live = self._live.get(microvm_id)
        if live is not None:
            if to is S.RUNNING:
                live.running.set()
                live.last_activity = time.time()
            else:
                live.running.clear()
        if self.on_change is not None:
            self.on_change(microvm_id)
        return row

    def _row(self, microvm_id: str) -> Microvm | None:
        with self.store.read() as session:
            row = microvms.find_microvm(session, microvm_id, account_id=None)
            if row is not None:
                session.expunge(row)
            return row

    def _version_facts(self, row: Microvm) -> tuple[ImageSnapshot, HookConfig, bool]:
        with self.store.read() as session:
            version = versions.get_version_by_id(session, row.version_id)
            config = versions.version_config(version)
            artifact_dir = version.artifact_dir
        if not artifact_dir:
            raise NotFound(f"image version {row.image_version} of {row.image_name} has no snapshot")
        snapshot = ImageSnapshot.load(Path(artifact_dir) / "snapshot")
        connectors = [*(row.egress_connectors or []), *(config.egressNetworkConnectors or [])]
        egress = any(str(c).endswith(NetworkConnectorName.INTERNET_EGRESS.value) for c in connectors)
        return snapshot, HookConfig.of(config), egress

    def _spawn(self, live: _Live, coro: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=f"{name}-{live.id}")
        live.op = task

        def done(t: asyncio.Task[None]) -> None:
            if live.op is t:
                live.op = None
            if not t.cancelled() and t.exception() is not None:
                log.error("microvm operation crashed", exc_info=t.exception(),
                          extra={"action": f"{name}_crash", "microvm_id": live.id})

        task.add_done_callback(done)

    async def _hook(self, live: _Live, name: str, body: bytes = b"") -> str | None:
        """Call hook ``name`` if enabled; None on 200, else what went wrong."""
        if not live.hooks.enabled.get(name) or live.vm is None:
            return None
        timeout = live.hooks.timeout_s[name]
        try:
            resp = await call_hook(live.vm.require_agent(), live.hooks.port, name, body=body, timeout=timeout)
        except EmberError as exc:
            return f"{name} hook failed: {exc}"
        return None if resp.status == 200 else f"{name} hook answered {resp.status}"

    def _vm_exited(self, vm: VM) -> None:
        """A VMM ended without being asked to (crash, OOM kill): the MicroVM is over."""
        if self._stopping:
            return
        with contextlib.suppress(IllegalTransition, RecordNotFound):
            self.request_terminate(None, vm.id, f"the VM stopped unexpectedly: {vm.exit_reason}")

    # -- launch ----------------------------------------------------------
    def launch(self, microvm_id: str) -> None:
        """Start the PENDING MicroVM ``microvm_id`` (its row is committed) in the background."""
        live = self.live(microvm_id)
        self._spawn(live, self._launch(live), "launch")

    async def _launch(self, live: _Live) -> None:
        async with live.lock:
            row = self._row(live.id)
            if row is None or row.state is not S.PENDING:
                return
            try:
                snapshot, live.hooks, egress = self._version_facts(row)
                async with self._launch_slots:
                    live.vm = await self.host.clone(snapshot, vm_id=live.id, egress=egress)
                body = json.dumps({"microvmId": live.id, "runHookPayload": row.run_hook_payload}).encode()
                problem = await self._hook(live, "run", body)
                if problem:
                    raise EmberError(f"launch failed: {problem} (timeout {live.hooks.timeout_s['run']:.0f} s)")
                self._move(live.id, S.RUNNING, None, expect=S.PENDING)
            except asyncio.CancelledError:
                await self._discard(live)
                raise
            except (EmberError, OSError) as exc:
                await self._discard(live)
                with contextlib.suppress(IllegalTransition, RecordNotFound):
                    self._move(live.id, S.TERMINATING, str(exc))
                    self._move(live.id, S.TERMINATED, str(exc))
                return
            self._start_pump(live, row)

    def _start_pump(self, live: _Live, row: Microvm) -> None:
        if (row.logging or {}).get("disabled") is not None or live.vm is None:
            return
        if live.pump is None:
            live.pump = LogPump(self.store, live.id)
        live.pump.attach(live.vm.require_agent())

    async def _discard(self, live: _Live) -> None:
        if live.pump is not None:
            await live.pump.stop()
            live.pump = None
        if live.vm is not None:
            with contextlib.suppress(Exception):
                await self.host.destroy(live.vm)
            live.vm = None
        else:
            self.host.forget(live.id)

    # -- suspend ---------------------------------------------------------
    def request_suspend(self, account_id: str, microvm_id: str, reason: str | None = None) -> None:
        """RUNNING → SUSPENDING now (IllegalTransition otherwise); the snapshot is taken in the background."""
        with self.store.write() as session:
            transitions.transition(session, microvm_id, S.SUSPENDING, reason, account_id=account_id,
                                   expect_from=S.RUNNING)
        live = self.live(microvm_id)
        live.running.clear()
        self._spawn(live, self._suspend(live), "suspend")

    async def _suspend(self, live: _Live) -> None:
        async with live.lock:
            await self._do_suspend(live, None)

    async def _do_suspend(self, live: _Live, reason: str | None) -> None:
        vm = live.vm
        if vm is None or not vm.alive:
            self._move(live.id, S.TERMINATING, "the VM's VMM ended before it could be suspended")
            self._move(live.id, S.TERMINATED, "the VM's VMM ended before it could be suspended")
            await self._discard(live)
            return
        note = await self._hook(live, "suspend")
        if live.pump is not None:
            await live.pump.detach()
        try:
            await self.host.suspend(vm)
        except (EmberError, OSError) as exc:
            if vm.alive:
                self._move(live.id, S.RUNNING, f"suspend failed, the VM keeps running: {exc}", expect=S.SUSPENDING)
                if live.pump is not None:
                    live.pump.attach(vm.require_agent())
            else:
                self._move(live.id, S.TERMINATED, f"the VMM ended during suspend: {exc}")
                await self._discard(live)
            return
        self._move(live.id, S.SUSPENDED, note or reason, expect=S.SUSPENDING)

    # -- resume ----------------------------------------------------------
    def request_resume(self, account_id: str, microvm_id: str) -> None:
        """Resume a SUSPENDED MicroVM in the background (IllegalTransition if it is not SUSPENDED)."""
        with self.store.read() as session:
            row = microvms.get_microvm(session, account_id, microvm_id)
            if row.state is not S.SUSPENDED:
                raise IllegalTransition(microvm_id, row.state, S.RUNNING)
        self._start_resume(self.live(microvm_id))

    def _start_resume(self, live: _Live) -> None:
        if live.op is None or live.op.done():
            # The resume starts now (ResumeMicrovm or a held request); the move to RUNNING records when, so the
            # metrics can time it while the stored state stays SUSPENDED (there is no RESUMING state).
            self._spawn(live, self._resume(live, utcnow()), "resume")

    async def _resume(self, live: _Live, asked_at: datetime) -> None:
        async with live.lock:
            row = self._row(live.id)
            if row is None or row.state is not S.SUSPENDED:
                return
            try:
                if live.vm is None:
                    live.vm = self.host.load_suspended(live.id)
                    _, live.hooks, _ = self._version_facts(row)
                await self.host.resume(live.vm)
            except asyncio.CancelledError:
                raise
            except (EmberError, OSError) as exc:
                reason = f"resume failed: its suspend snapshot is missing or unusable: {exc}"
                await self._discard(live)
                self._move(live.id, S.TERMINATING, reason)
                self._move(live.id, S.TERMINATED, reason)
                return
            problem = await self._hook(live, "resume")
            if problem:
                with contextlib.suppress(EmberError, OSError):
                    await self.host.suspend(live.vm)
                with self.store.write() as session:
                    row2 = microvms.find_microvm(session, live.id, account_id=None)
                    if row2 is not None:
                        row2.state_reason = f"{problem}; the VM stays SUSPENDED"
                return
            self._move(live.id, S.RUNNING, None, expect=S.SUSPENDED, started_at=asked_at)
            self._start_pump(live, row)

    # -- terminate -------------------------------------------------------
    def request_terminate(self, account_id: str | None, microvm_id: str, reason: str | None = None) -> None:
        """Terminate (idempotent: a TERMINATED VM is left as it is)."""
        with self.store.write() as session:
            row = (microvms.get_microvm(session, account_id, microvm_id) if account_id
                   else microvms.find_microvm(session, microvm_id, account_id=None))
            if row is None or row.state in (S.TERMINATED, S.TERMINATING):
                return
            transitions.transition(session, microvm_id, S.TERMINATING, reason or "TerminateMicrovm")
        live = self.live(microvm_id)
        live.running.clear()
        previous = live.op
        if previous is not None:
            previous.cancel()  # a terminate wins over a launch, suspend or resume in progress
        self._spawn(live, self._terminate(live, previous, reason), "terminate")

    async def _terminate(self, live: _Live, previous: asyncio.Task[None] | None, reason: str | None) -> None:
        if previous is not None:
            with contextlib.suppress(BaseException):
                await previous
        async with live.lock:
            if live.vm is not None and live.vm.alive:
                await self._hook(live, "terminate")  # best effort
            await self._discard(live)
            with contextlib.suppress(IllegalTransition, RecordNotFound):
                self._move(live.id, S.TERMINATED, reason or "TerminateMicrovm")
            self._live.pop(live.id, None)

    # -- timers ----------------------------------------------------------
    async def _timers(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            try:
                self._tick()
            except Exception:
                log.exception("timer tick failed", extra={"action": "timer_error"})

    def _tick(self) -> None:
        now = utcnow()
        with self.store.read() as session:
            rows = microvms.microvms_in_states(session, [S.RUNNING, S.SUSPENDED, S.PENDING])
            facts = [(r.id, r.account_id, r.state, r.created_at, r.maximum_duration_s, r.idle_policy,
                      r.last_activity_at, r.suspended_at) for r in rows]
        for vm_id, account, state, created, max_s, idle, last_db, suspended_at in facts:
            live = self._live.get(vm_id)
            last = max(last_db, _utc(live.last_activity)) if live else last_db
            decision = decide(state=state, created_at=created, maximum_duration_s=max_s, idle_policy=idle,
                              last_activity_at=last, suspended_at=suspended_at,
                              open_connections=live.open_connections if live else 0, now=now)
            try:
                if decision.due is Due.SUSPEND and (live is None or live.op is None):
                    self.request_suspend(account, vm_id, decision.reason)
                elif decision.due is Due.TERMINATE:
                    self.request_terminate(None, vm_id, decision.reason)
            except (IllegalTransition, RecordNotFound):
                pass
            if live is not None and live.last_activity - live.activity_flushed >= ACTIVITY_FLUSH_S:
                live.activity_flushed = live.last_activity
                with self.store.write() as session:
                    microvms.record_activity(session, vm_id, _utc(live.last_activity))

    # -- gateway backend -------------------------------------------------
    def lookup(self, microvm_id: str) -> VmTarget | None:
        row = self._row(microvm_id)
        if row is None:
            return None
        idle = row.idle_policy or {}
        return VmTarget(microvm_id=row.id, account_id=row.account_id, state=str(row.state.value),
                        auto_resume=bool(idle.get("autoResumeEnabled", True)),
                        shell_ingress=any(str(c).endswith(NetworkConnectorName.SHELL_INGRESS.value)
                                          for c in (row.ingress_connectors or [])))

    async def ensure_running(self, microvm_id: str, timeout: float) -> AgentClient:
        deadline = time.monotonic() + timeout
        live = self.live(microvm_id)
        live.last_activity = time.time()
        vm = live.vm
        # Hot path, no store read: ``running`` is set only by the move to RUNNING and cleared by every
        # request to leave it, so it is as true as the stored state for a VM this process runs.
        if live.running.is_set() and vm is not None and vm.alive and vm.agent is not None:
            return vm.agent
        resume: asyncio.Task[None] | None = None
        while True:
            target = self.lookup(microvm_id)
            if target is None or target.state in (S.TERMINATED, S.TERMINATING):
                raise Unavailable(404, f"MicroVM {microvm_id} is {target.state if target else 'unknown'}")
            vm = live.vm
            if target.state == S.RUNNING and vm is not None and vm.alive and vm.agent is not None:
                return vm.agent
            if target.state == S.SUSPENDED:
                if not target.auto_resume:
                    raise Unavailable(502, f"MicroVM {microvm_id} is SUSPENDED and autoResumeEnabled is false: "
                                           "call ResumeMicrovm first")
                if resume is not None and resume.done():
                    row = self._row(microvm_id)
                    raise Unavailable(502, (row.state_reason if row else None) or "the resume failed")
                if live.op is None or live.op.done():
                    self._start_resume(live)
                resume = resume or live.op
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"MicroVM {microvm_id} was not RUNNING within {timeout} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(live.running.wait(), min(remaining, 0.2))

    def connection_opened(self, microvm_id: str) -> None:
        live = self.live(microvm_id)
        live.open_connections += 1
        live.last_activity = time.time()

    def connection_closed(self, microvm_id: str) -> None:
        live = self._live.get(microvm_id)
        if live is not None:
            live.open_connections = max(0, live.open_connections - 1)
            live.last_activity = time.time()
