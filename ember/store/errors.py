"""Errors the store raises, each under the ``ember.errors`` category the API maps to a contract error.

::

    NotFound
    └── RecordNotFound         no such row in the caller's account          → ResourceNotFoundException
    StateConflict
    ├── IllegalTransition      a MicroVM state move the table forbids       → ConflictException
    ├── NameTaken              an image with that name already exists       → ConflictException
    └── IdempotencyMismatch    clientToken reused with other parameters     → ConflictException
    InvalidInput
    └── (nextToken that no list returned: raised as InvalidInput itself)    → ValidationException
"""

from __future__ import annotations

from ember.errors import NotFound, StateConflict


class RecordNotFound(NotFound):
    """No row with that identifier in the caller's account; ``resource_type``/``resource_id`` go on the wire."""

    def __init__(self, resource_type: str, resource_id: str, detail: str | None = None) -> None:
        super().__init__(detail or f"{resource_type} {resource_id} was not found")
        self.resource_type = resource_type
        self.resource_id = resource_id


class IllegalTransition(StateConflict):
    """A MicroVM state move that the transition table forbids (e.g. resume a RUNNING MicroVM)."""

    def __init__(self, microvm_id: str, from_state: str, to_state: str) -> None:
        super().__init__(f"MicroVM {microvm_id} cannot go from {from_state} to {to_state}")
        self.microvm_id = microvm_id
        self.from_state = from_state
        self.to_state = to_state
        self.resource_type = "Microvm"
        self.resource_id = microvm_id


class NameTaken(StateConflict):
    """An image with this name already exists in the account."""

    def __init__(self, name: str) -> None:
        super().__init__(f"an image named {name!r} already exists")
        self.resource_type = "MicrovmImage"
        self.resource_id = name


class IdempotencyMismatch(StateConflict):
    """The ``clientToken`` was used before with different request parameters."""

    def __init__(self, operation: str, client_token: str) -> None:
        super().__init__(f"clientToken was used with different request parameters ({operation}, {client_token!r})")
        self.operation = operation
        self.client_token = client_token
        self.resource_type = operation
        self.resource_id = client_token
