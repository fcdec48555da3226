"""At start, make every stored MicroVM true again: no VM reported RUNNING that is not, no orphan VMM or file.

The VMMs of a previous ``ember serve`` died with it (each QEMU carries
``PR_SET_PDEATHSIG``; survivors are killed here from their pid files). So:

- SUSPENDED with a complete suspend snapshot stays SUSPENDED; without one it
  is TERMINATED, saying why.
- RUNNING, SUSPENDING or PENDING: its memory is gone. If a complete suspend
  snapshot exists (a shutdown suspended it) it becomes SUSPENDED, resumable,
  state intact; otherwise TERMINATED with the reason. Resuming from an *older*
  snapshot is never done: the disk has moved on since, and memory and disk
  would disagree.
- TERMINATING is finished: TERMINATED.
- VM directories no stored MicroVM owns are removed.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from ember.contract.enums import MicrovmState as S
from ember.errors import EmberError, NotFound
from ember.store import microvms, transitions

if TYPE_CHECKING:
    from .service import MicrovmService

LOST = "the VM's VMM ended when ember serve stopped, and no complete snapshot was left to resume from"


async def reconcile(service: MicrovmService) -> dict[str, int]:
    host, store = service.host, service.store
    counts = {"adopted": 0, "kept_suspended": 0, "recovered_suspended": 0, "terminated": 0,
              "orphan_vmms_killed": 0, "orphan_dirs_removed": 0}
    with store.read() as session:
        rows = [(r.id, r.state) for r in microvms.microvms_in_states(
            session, [S.PENDING, S.RUNNING, S.SUSPENDING, S.SUSPENDED, S.TERMINATING])]
    known = {vm_id for vm_id, _ in rows}
    adopted = set()
    for vm_id, state in rows:
        if state in (S.RUNNING, S.SUSPENDING) and await _adopt(service, vm_id, state):
            adopted.add(vm_id)
    counts["adopted"] = len(adopted)
    # Every VMM not adopted now is an orphan (a PENDING launch, a TERMINATING VM, a VM no row owns).
    counts["orphan_vmms_killed"] = len(host.reap_orphans())
    for vm_id, state in rows:
        if vm_id in adopted:
            continue
        try:
            host.load_suspended(vm_id)
            complete = True
        except NotFound:
            complete = False
        with store.write() as session:
            if complete and state is S.SUSPENDED:
                counts["kept_suspended"] += 1
            elif complete and state in (S.RUNNING, S.SUSPENDING, S.PENDING):
                if state is S.RUNNING:
                    transitions.transition(session, vm_id, S.SUSPENDING, "recovering after a restart")
                if state is S.PENDING:
                    transitions.transition(session, vm_id, S.TERMINATING, LOST)
                    transitions.transition(session, vm_id, S.TERMINATED, LOST)
                    counts["terminated"] += 1
                    host.forget(vm_id)
                    continue
                transitions.transition(session, vm_id, S.SUSPENDED,
                                       "suspended when ember serve stopped; resumes on the next request or call")
                counts["recovered_suspended"] += 1
            else:
                reason = LOST if state is not S.SUSPENDED else "its suspend snapshot is missing or incomplete"
                if state is not S.TERMINATING:
                    transitions.transition(session, vm_id, S.TERMINATING, reason)
                transitions.transition(session, vm_id, S.TERMINATED, reason)
                counts["terminated"] += 1
                with contextlib.suppress(Exception):
                    host.forget(vm_id)
    for vmdir in host.vms_dir.iterdir():
        if vmdir.is_dir() and vmdir.name not in known:
            host.forget(vmdir.name)
            counts["orphan_dirs_removed"] += 1
    return counts


async def _adopt(service: MicrovmService, vm_id: str, state: S) -> bool:
    """Reattach a VM whose VMM survived; True when it runs under this process now."""
    try:
        vm = await service.host.adopt(vm_id)
    except (NotFound, EmberError, OSError):
        return False
    live = service.live(vm_id)
    live.vm = vm
    row = service._row(vm_id)
    if row is not None:
        _, live.hooks, _ = service._version_facts(row)
    if state is S.SUSPENDING:
        service._move(vm_id, S.RUNNING, "a suspend was interrupted by a restart of ember serve; the VM kept running")
    else:
        live.running.set()
    if row is not None:
        service._start_pump(live, row)
    return True
