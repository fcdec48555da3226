"""Copies a VM's app log lines from its agent into the store, in batches, across suspend and resume."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from ember.errors import EmberError
from ember.host.agent_client import AgentClient
from ember.store import Store, logs

log = logging.getLogger(__name__)

LOG_OWNER_MICROVM = "microvm"
# Lines are written at most this often (one transaction per batch, not per line).
FLUSH_INTERVAL_S = 0.5


class LogPump:
    """Follows the agent's app log of one VM; ``detach`` before suspend, ``attach`` after resume."""

    def __init__(self, store: Store, microvm_id: str) -> None:
        self.store = store
        self.microvm_id = microvm_id
        self.seq = 0  # the agent's sequence number of the last line stored
        self._task: asyncio.Task[None] | None = None

    def attach(self, agent: AgentClient) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._follow(agent),
                                                                name=f"logs-{self.microvm_id}")

    async def detach(self) -> None:
        """Stop following (flushing what was read); idempotent."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    stop = detach

    async def _follow(self, agent: AgentClient) -> None:
        batch: list[dict[str, object]] = []
        loop = asyncio.get_running_loop()
        last_flush = loop.time()
        lines = agent.app_logs(since=self.seq, follow=True)
        try:
            while True:
                try:
                    line = await asyncio.wait_for(anext(lines), FLUSH_INTERVAL_S)
                except TimeoutError:
                    line = None
                except (StopAsyncIteration, EmberError):
                    break
                if line is not None:
                    batch.append(line)
                if batch and (line is None or loop.time() - last_flush >= FLUSH_INTERVAL_S):
                    self._flush(batch)
                    batch = []
                    last_flush = loop.time()
        finally:
            if batch:
                self._flush(batch)
            with contextlib.suppress(Exception):
                await lines.aclose()

    def _flush(self, batch: list[dict[str, object]]) -> None:
        try:
            now = datetime.now(UTC)
            entries = [(now, str(item.get("stream", "stdout")), str(item.get("line", ""))) for item in batch]
            with self.store.write() as session:
                logs.append_entries(session, LOG_OWNER_MICROVM, self.microvm_id, entries)
            self.seq = max(self.seq, *(int(str(item.get("seq", 0))) for item in batch))
        except Exception:
            log.exception("app log write failed", extra={"action": "app_log_error", "microvm_id": self.microvm_id})
