"""Ember's error tree: every error Ember raises on purpose derives from EmberError.

::

    EmberError
    ├── InvalidInput          the caller asked for something out of bounds (names field and bound)
    ├── NotFound              no such VM, image or snapshot
    ├── StateConflict         the resource's state forbids the operation
    ├── HostError             this machine cannot do what was asked
    │   ├── KitMissing        `ember setup` has not been run (or the kit is stale)
    │   └── CapacityError     not enough memory, disk or VM slots
    ├── VmmError              the VMM (QEMU) failed
    │   ├── VmmStartError     QEMU did not start, or died while starting
    │   ├── VmExited          the VMM process ended (killed, crashed, guest shut down)
    │   └── SnapshotError     saving or loading a snapshot failed
    └── AgentError            the guest agent did not answer as it should
        ├── AgentTimeout      no answer in time
        └── AgentOpError      the agent refused an operation (carries its code)

The API layer maps these categories onto the contract's error types in one table.
"""

from __future__ import annotations


class EmberError(Exception):
    """Base of every error Ember raises deliberately."""


class InvalidInput(EmberError):
    """The caller asked for something out of bounds; the message names the field and the bound."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class NotFound(EmberError):
    """No such resource."""


class StateConflict(EmberError):
    """The resource's current state forbids the operation."""


class HostError(EmberError):
    """This machine cannot do what was asked."""


class KitMissing(HostError):
    """The guest kit (kernel, initramfs, runtime disk) is missing or stale: run `ember setup`."""


class CapacityError(HostError):
    """Not enough memory, disk or VM slots on this host."""


class VmmError(EmberError):
    """The virtual machine monitor failed."""

    def __init__(self, message: str, *, vm_id: str | None = None, pid: int | None = None) -> None:
        where = ", ".join(p for p in (f"vm {vm_id}" if vm_id else "", f"qemu pid {pid}" if pid else "") if p)
        super().__init__(f"{message} ({where})" if where else message)
        self.vm_id = vm_id
        self.pid = pid


class VmmStartError(VmmError):
    """QEMU did not start, or died while starting."""


class VmExited(VmmError):
    """The VMM process ended: killed, crashed or the guest shut down."""


class SnapshotError(VmmError):
    """Saving or loading a snapshot failed."""


class AgentError(EmberError):
    """The guest agent did not answer as it should."""


class AgentTimeout(AgentError):
    """The guest agent did not answer in time."""


class AgentOpError(AgentError):
    """The guest agent refused an operation; ``code`` is its reason (an errno name or a protocol code)."""

    def __init__(self, op: str, code: str, message: str) -> None:
        super().__init__(f"{op}: {code}: {message}")
        self.op = op
        self.code = code
