"""A fake GatewayBackend for tests: MicroVMs in a dict, agents whose streams reach real local TCP servers.

``FakeBackend`` implements :class:`~ember.gateway.backend.GatewayBackend`. Each :class:`FakeVm` maps
guest ports to ``127.0.0.1`` ports of servers the test runs, so real bytes flow through the gateway;
an unmapped port (or a mapped one nobody listens on) is refused with ``ECONNREFUSED`` as the agent
would. SUSPENDED VMs with auto-resume resume after ``resume_delay_s`` (one resume however many
requests wait: ``resumes`` counts them), PENDING VMs wait until the test calls :meth:`FakeVm.set_state`.
The shell is a fake PTY process that echoes its input and reports resizes. This fake never stands in
for a real VM in a test that claims VM behaviour.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from ember.errors import AgentOpError

from .backend import Unavailable, VmTarget

DEFAULT_ACCOUNT_ID = "111122223333"
FAKE_READ_CHUNK_BYTES = 64 * 1024
"""The real agent stream delivers at most 64 KiB per DATA frame."""


class FakeStream:
    """An agent stream: a TCP connection to a local server standing in for the guest port."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def write(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()

    async def write_eof(self) -> None:
        if self._writer.can_write_eof() and not self._writer.is_closing():
            self._writer.write_eof()

    async def read(self) -> bytes:
        try:
            return await self._reader.read(FAKE_READ_CHUNK_BYTES)
        except ConnectionError:
            return b""

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()


class FakeShellProcess:
    """A PTY process that echoes stdin back on fd 1 and answers a resize with ``[resized COLSxROWS]``."""

    def __init__(self, argv: list[str], pty: tuple[int, int] | None) -> None:
        self.argv = argv
        self.pid = 4242
        self.size = pty
        self.resizes: list[tuple[int, int]] = []
        self.exit_code: int | None = None
        self.signal: int | None = None
        self.finished = False
        self.killed = False
        self._output: asyncio.Queue[bytes | None] = asyncio.Queue()

    async def write(self, data: bytes) -> None:
        if data == b"exit\n" or data == b"exit\r":
            self.exit_code = 0
            await self._output.put(None)
            return
        await self._output.put(data)

    async def close_stdin(self) -> None:
        self.exit_code = 0
        await self._output.put(None)

    async def resize(self, cols: int, rows: int) -> None:
        self.size = (cols, rows)
        self.resizes.append((cols, rows))
        await self._output.put(f"[resized {cols}x{rows}]".encode())

    async def send_signal(self, signum: int) -> None:
        self.signal = signum
        await self._output.put(None)

    async def events(self) -> AsyncIterator[tuple[int, bytes]]:
        while not self.finished:
            data = await self._output.get()
            if data is None:
                self.finished = True
                return
            yield 1, data

    async def kill(self) -> None:
        self.killed = True
        if not self.finished:
            self.signal = 9
            await self._output.put(None)


class FakeAgent:
    """The part of AgentClient the gateway uses: ``open_stream`` and ``spawn``."""

    def __init__(self, vm: FakeVm) -> None:
        self.vm = vm

    async def open_stream(self, port: int, host: str = "127.0.0.1") -> FakeStream:
        local = self.vm.ports.get(port)
        if local is None:
            raise AgentOpError("stream", "ECONNREFUSED", f"connect to {host}:{port}: connection refused")
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", local, limit=2 * FAKE_READ_CHUNK_BYTES)
        except ConnectionRefusedError:
            raise AgentOpError("stream", "ECONNREFUSED", f"connect to {host}:{port}: connection refused") from None
        self.vm.streams_opened += 1
        return FakeStream(reader, writer)

    async def spawn(self, argv: list[str], *, env: dict[str, str] | None = None, cwd: str | None = None,
                    uid: int | None = None, gid: int | None = None, stdin: bool = False,
                    pty: tuple[int, int] | None = None, root: str = "rootfs") -> FakeShellProcess:
        proc = FakeShellProcess(argv, pty)
        self.vm.processes.append(proc)
        return proc


@dataclass
class FakeVm:
    """One fake MicroVM; tests mutate its fields directly or through :meth:`set_state`."""

    microvm_id: str
    account_id: str = DEFAULT_ACCOUNT_ID
    state: str = "RUNNING"
    auto_resume: bool = True
    shell_ingress: bool = False
    ports: dict[int, int] = field(default_factory=dict)
    """Guest port -> local TCP port of the server that stands in for the app."""
    resume_delay_s: float = 0.2
    resume_fails: bool = False
    streams_opened: int = 0
    processes: list[FakeShellProcess] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def set_state(self, state: str) -> None:
        """Move the VM (wakes requests held in PENDING)."""
        self.state = state
        self._changed.set()
        self._changed = asyncio.Event()


class FakeBackend:
    """In-memory GatewayBackend with counters tests assert on."""

    def __init__(self, token_secret: bytes = b"fake-gateway-secret-0123456789abcdef") -> None:
        self.token_secret = token_secret
        self.vms: dict[str, FakeVm] = {}
        self.resumes = 0
        self.opened = 0
        self.closed = 0
        self.open_now: dict[str, int] = {}
        self._resuming: dict[str, asyncio.Task[None]] = {}

    def add_vm(self, microvm_id: str, **fields: object) -> FakeVm:
        vm = FakeVm(microvm_id=microvm_id, **fields)  # type: ignore[arg-type]
        self.vms[microvm_id] = vm
        return vm

    # -- GatewayBackend --------------------------------------------------------------------------------------
    def lookup(self, microvm_id: str) -> VmTarget | None:
        vm = self.vms.get(microvm_id)
        if vm is None:
            return None
        return VmTarget(microvm_id=vm.microvm_id, account_id=vm.account_id, state=vm.state,
                        auto_resume=vm.auto_resume, shell_ingress=vm.shell_ingress)

    async def ensure_running(self, microvm_id: str, timeout: float) -> FakeAgent:  # type: ignore[override]
        async with asyncio.timeout(timeout):
            while True:
                vm = self.vms.get(microvm_id)
                if vm is None or vm.state in ("TERMINATING", "TERMINATED"):
                    raise Unavailable(404, f"MicroVM {microvm_id} not found")
                if vm.state == "RUNNING":
                    return FakeAgent(vm)
                if vm.state == "SUSPENDED":
                    if not vm.auto_resume:
                        raise Unavailable(502, f"MicroVM {microvm_id} is SUSPENDED and auto-resume is off")
                    await asyncio.shield(self._resume(vm))
                    if vm.state != "RUNNING":
                        raise Unavailable(502, f"MicroVM {microvm_id} failed to resume")
                    continue
                await vm._changed.wait()  # PENDING, SUSPENDING: wait for the next move

    def connection_opened(self, microvm_id: str) -> None:
        self.opened += 1
        self.open_now[microvm_id] = self.open_now.get(microvm_id, 0) + 1

    def connection_closed(self, microvm_id: str) -> None:
        self.closed += 1
        self.open_now[microvm_id] -= 1

    # -- helpers ---------------------------------------------------------------------------------------------
    def _resume(self, vm: FakeVm) -> asyncio.Task[None]:
        task = self._resuming.get(vm.microvm_id)
        if task is None or task.done():
            task = asyncio.get_running_loop().create_task(self._do_resume(vm), name=f"fake-resume-{vm.microvm_id}")
            self._resuming[vm.microvm_id] = task
        return task

    async def _do_resume(self, vm: FakeVm) -> None:
        self.resumes += 1
        await asyncio.sleep(vm.resume_delay_s)
        vm.set_state("SUSPENDED" if vm.resume_fails else "RUNNING")

    async def close(self) -> None:
        """Cancel and await any resume still running."""
        tasks = list(self._resuming.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._resuming.clear()
