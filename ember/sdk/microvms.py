"""``client.microvms``: run, list, inspect, suspend, resume and terminate MicroVMs, mint tokens, read logs.

``Microvms`` is the sync resource and ``AsyncMicrovms`` its async twin; both return the contract's models
(``MicrovmDetail``, ``MicrovmItem``) except ``run`` and ``handle``, which return a ``Microvm`` handle
(``ember.sdk.endpoint``) for talking to the VM's endpoint.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING

from ember.contract import MicrovmDetail, MicrovmItem, MicrovmState

from . import _operations as ops
from ._bodies import Seconds, run_body
from .errors import WaitFailed, WaitTimeout
from .logs import LogLine, aiter_log_lines, iter_log_lines
from .tokens import DEFAULT_PORT, DEFAULT_TOKEN_MINUTES

if TYPE_CHECKING:
    from .client import AsyncClient, Client
    from .endpoint import AsyncMicrovm, Microvm

DEFAULT_WAIT_TIMEOUT_S = 300.0
"""How long ``wait_for_state`` waits by default (a launch takes seconds, even under TCG)."""
POLL_INTERVAL_S = 1.0
TERMINATED = MicrovmState.TERMINATED.value

Progress = Callable[[MicrovmDetail], None]


def _visible(items: list[MicrovmItem], show_all: bool) -> list[MicrovmItem]:
    return items if show_all else [i for i in items if i.state != MicrovmState.TERMINATED]


def _check_state(detail: MicrovmDetail, targets: set[str]) -> bool:
    """True when reached; raises WaitFailed when the VM terminated without that being the goal."""
    if detail.state in targets:
        return True
    if detail.state == TERMINATED:
        reason = f": {detail.stateReason}" if detail.stateReason else ""
        raise WaitFailed(f"MicroVM {detail.microvmId} is TERMINATED{reason}", last=detail)
    return False


def _timeout(microvm_id: str, targets: set[str], timeout: float, last: MicrovmDetail | None) -> WaitTimeout:
    seen = last.state if last is not None else "unknown"
    return WaitTimeout(f"MicroVM {microvm_id} did not reach {' or '.join(sorted(targets))} within {timeout:g} s "
                       f"(last state {seen})", last=last)


class Microvms:
    """MicroVM operations of a sync ``Client``."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._t = client.transport

    def run(self, image: str, *, version: str | None = None, idle: Seconds | None = None,
            suspended_for: Seconds | None = None, auto_resume: bool = True, max_duration: Seconds | None = None,
            payload: str | None = None, shell: bool = False, egress: bool = False,
            execution_role_arn: str | None = None, client_token: str | None = None, wait: bool = False,
            timeout: float = DEFAULT_WAIT_TIMEOUT_S, on_progress: Progress | None = None) -> Microvm:
        """RunMicrovm from ``image`` (name or ARN; its latest ACTIVE version unless ``version``).

        ``idle`` (seconds or timedelta) turns on auto-suspend; ``suspended_for`` then bounds the time parked
        (0 = until ``max_duration``), ``auto_resume`` lets a request wake it. ``shell`` adds the
        SHELL_INGRESS connector, ``egress`` INTERNET_EGRESS. ``wait`` blocks until RUNNING.
        """
        body = run_body(image, region=self._t.region, version=version, idle=idle, suspended_for=suspended_for,
                        auto_resume=auto_resume, max_duration=max_duration, payload=payload, shell=shell,
                        egress=egress, execution_role_arn=execution_role_arn, client_token=client_token)
        detail = self._t.call(ops.run_microvm(body))
        assert detail is not None
        vm = self.handle(detail.microvmId, detail)
        if wait:
            vm.wait_for_state(MicrovmState.RUNNING, timeout=timeout, on_progress=on_progress)
        return vm

    def handle(self, microvm_id: str, detail: MicrovmDetail | None = None) -> Microvm:
        """A handle on an existing MicroVM (no API call until one is needed)."""
        from .endpoint import Microvm

        return Microvm(self._client, microvm_id, detail)

    def get(self, microvm_id: str) -> MicrovmDetail:
        """GetMicrovm."""
        detail = self._t.call(ops.get_microvm(microvm_id))
        assert detail is not None
        return detail

    def list(self, *, all: bool = False, image: str | None = None,
             version: str | None = None) -> list[MicrovmItem]:
        """ListMicrovms, every page; TERMINATED MicroVMs only with ``all=True``."""
        items: list[MicrovmItem] = []
        token: str | None = None
        while True:
            page = self._t.call(ops.list_microvms(next_token=token, image=image, version=version))
            assert page is not None
            items.extend(page.items)
            token = page.nextToken
            if not token:
                return _visible(items, all)

    def suspend(self, microvm_id: str) -> None:
        """SuspendMicrovm (RUNNING → SUSPENDING → SUSPENDED)."""
        self._t.call(ops.suspend_microvm(microvm_id))

    def resume(self, microvm_id: str) -> None:
        """ResumeMicrovm (SUSPENDED → RUNNING)."""
        self._t.call(ops.resume_microvm(microvm_id))

    def terminate(self, microvm_id: str) -> None:
        """TerminateMicrovm (succeeds again on a TERMINATED MicroVM)."""
        self._t.call(ops.terminate_microvm(microvm_id))

    def token(self, microvm_id: str, *, port: int = DEFAULT_PORT,
              minutes: int = DEFAULT_TOKEN_MINUTES) -> dict[str, str]:
        """CreateMicrovmAuthToken for one port: the headers to send (``{"X-aws-proxy-auth": …}``)."""
        response = self._t.call(ops.auth_token(microvm_id, minutes, [{"port": port}]))
        assert response is not None
        return dict(response.authToken)

    def shell_token(self, microvm_id: str, *, minutes: int = DEFAULT_TOKEN_MINUTES) -> dict[str, str]:
        """CreateMicrovmShellAuthToken: the headers for the shell WebSocket."""
        response = self._t.call(ops.shell_token(microvm_id, minutes))
        assert response is not None
        return dict(response.authToken)

    def logs(self, microvm_id: str, *, follow: bool = False, since: int = 0) -> Iterator[LogLine]:
        """The app's stdout/stderr after line ``since``; ``follow`` keeps reading until the MicroVM ends."""
        return iter_log_lines(self._t.lines(ops.microvm_logs(microvm_id, follow=follow, since=since), follow=follow))

    def wait_for_state(self, microvm_id: str, *states: str, timeout: float = DEFAULT_WAIT_TIMEOUT_S,
                       poll: float = POLL_INTERVAL_S, on_progress: Progress | None = None) -> MicrovmDetail:
        """Poll GetMicrovm until the state is one of ``states`` (default RUNNING).

        Raises ``WaitFailed`` if the MicroVM terminates first (unless TERMINATED is wanted) and
        ``WaitTimeout`` after ``timeout`` seconds. ``on_progress`` gets every detail polled.
        """
        targets = {str(s) for s in states} or {MicrovmState.RUNNING.value}
        deadline = time.monotonic() + timeout
        last: MicrovmDetail | None = None
        while True:
            last = self.get(microvm_id)
            if on_progress is not None:
                on_progress(last)
            if _check_state(last, targets):
                return last
            if time.monotonic() + poll > deadline:
                raise _timeout(microvm_id, targets, timeout, last)
            time.sleep(poll)


class AsyncMicrovms:
    """MicroVM operations of an ``AsyncClient``."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client
        self._t = client.transport

    async def run(self, image: str, *, version: str | None = None, idle: Seconds | None = None,
                  suspended_for: Seconds | None = None, auto_resume: bool = True,
                  max_duration: Seconds | None = None, payload: str | None = None, shell: bool = False,
                  egress: bool = False, execution_role_arn: str | None = None, client_token: str | None = None,
                  wait: bool = False, timeout: float = DEFAULT_WAIT_TIMEOUT_S,
                  on_progress: Progress | None = None) -> AsyncMicrovm:
        """RunMicrovm (see ``Microvms.run``)."""
        body = run_body(image, region=self._t.region, version=version, idle=idle, suspended_for=suspended_for,
                        auto_resume=auto_resume, max_duration=max_duration, payload=payload, shell=shell,
                        egress=egress, execution_role_arn=execution_role_arn, client_token=client_token)
        detail = await self._t.call(ops.run_microvm(body))
        assert detail is not None
        vm = self.handle(detail.microvmId, detail)
        if wait:
            await vm.wait_for_state(MicrovmState.RUNNING, timeout=timeout, on_progress=on_progress)
        return vm

    def handle(self, microvm_id: str, detail: MicrovmDetail | None = None) -> AsyncMicrovm:
        """A handle on an existing MicroVM (no API call until one is needed)."""
        from .endpoint import AsyncMicrovm

        return AsyncMicrovm(self._client, microvm_id, detail)

    async def get(self, microvm_id: str) -> MicrovmDetail:
        """GetMicrovm."""
        detail = await self._t.call(ops.get_microvm(microvm_id))
        assert detail is not None
        return detail

    async def list(self, *, all: bool = False, image: str | None = None,
                   version: str | None = None) -> list[MicrovmItem]:
        """ListMicrovms, every page; TERMINATED MicroVMs only with ``all=True``."""
        items: list[MicrovmItem] = []
        token: str | None = None
        while True:
            page = await self._t.call(ops.list_microvms(next_token=token, image=image, version=version))
            assert page is not None
            items.extend(page.items)
            token = page.nextToken
            if not token:
                return _visible(items, all)

    async def suspend(self, microvm_id: str) -> None:
        """SuspendMicrovm."""
        await self._t.call(ops.suspend_microvm(microvm_id))

    async def resume(self, microvm_id: str) -> None:
        """ResumeMicrovm."""
        await self._t.call(ops.resume_microvm(microvm_id))

    async def terminate(self, microvm_id: str) -> None:
        """TerminateMicrovm."""
        await self._t.call(ops.terminate_microvm(microvm_id))

    async def token(self, microvm_id: str, *, port: int = DEFAULT_PORT,
                    minutes: int = DEFAULT_TOKEN_MINUTES) -> dict[str, str]:
        """CreateMicrovmAuthToken for one port: the headers to send."""
        response = await self._t.call(ops.auth_token(microvm_id, minutes, [{"port": port}]))
        assert response is not None
        return dict(response.authToken)

    async def shell_token(self, microvm_id: str, *, minutes: int = DEFAULT_TOKEN_MINUTES) -> dict[str, str]:
        """CreateMicrovmShellAuthToken: the headers for the shell WebSocket."""
        response = await self._t.call(ops.shell_token(microvm_id, minutes))
        assert response is not None
        return dict(response.authToken)

    def logs(self, microvm_id: str, *, follow: bool = False, since: int = 0) -> AsyncIterator[LogLine]:
        """The app's stdout/stderr after line ``since``; ``follow`` keeps reading until the MicroVM ends."""
        return aiter_log_lines(self._t.lines(ops.microvm_logs(microvm_id, follow=follow, since=since),
                                             follow=follow))

    async def wait_for_state(self, microvm_id: str, *states: str, timeout: float = DEFAULT_WAIT_TIMEOUT_S,
                             poll: float = POLL_INTERVAL_S, on_progress: Progress | None = None) -> MicrovmDetail:
        """Poll GetMicrovm until the state is one of ``states`` (see ``Microvms.wait_for_state``)."""
        targets = {str(s) for s in states} or {MicrovmState.RUNNING.value}
        deadline = time.monotonic() + timeout
        while True:
            last = await self.get(microvm_id)
            if on_progress is not None:
                on_progress(last)
            if _check_state(last, targets):
                return last
            if time.monotonic() + poll > deadline:
                raise _timeout(microvm_id, targets, timeout, last)
            await asyncio.sleep(poll)


__all__ = ["AsyncMicrovms", "Microvms"]
