"""What every API command shares: the ``--endpoint``/``--region`` options, the client, exit codes and output.

Commands reach Ember only through ``ember.sdk.Client``, like any other client. Errors end as one red line
on stderr with an exit code a script can test (``ExitCode``); results go to stdout, as a table or, with
``--json``, as the API's own JSON (wire names, timestamps as ISO 8601).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from enum import IntEnum
from functools import wraps
from typing import Any, TypeVar

import click
from rich.console import Console

from ember.cli.main import fail
from ember.errors import EmberError

F = TypeVar("F", bound=Callable[..., Any])


class ExitCode(IntEnum):
    """What ``ember`` exits with."""

    OK = 0
    ERROR = 1
    """Anything else that went wrong (the message says what)."""
    USAGE = 2
    """Bad arguments or options (click's usage errors too)."""
    NOT_FOUND = 3
    """No such image, version or MicroVM (ResourceNotFoundException)."""
    CONFLICT = 4
    """The resource's state forbids the call (ConflictException), e.g. suspending a TERMINATED MicroVM."""
    INTERRUPTED = 130


STATE_STYLES = {
    "RUNNING": "green", "PENDING": "yellow", "SUSPENDING": "cyan", "SUSPENDED": "blue", "TERMINATING": "magenta",
    "TERMINATED": "dim", "SUCCESSFUL": "green", "FAILED": "red", "IN_PROGRESS": "yellow", "CREATED": "green",
    "UPDATED": "green", "CREATING": "yellow", "UPDATING": "yellow", "CREATE_FAILED": "red", "UPDATE_FAILED": "red",
    "ACTIVE": "green", "INACTIVE": "dim", "DELETING": "magenta", "DELETED": "dim",
}


def out() -> Console:
    """Rich console on stdout (results)."""
    return Console(highlight=False, soft_wrap=True)


def err() -> Console:
    """Rich console on stderr (progress, notes)."""
    return Console(stderr=True, highlight=False, soft_wrap=True)


def exit_code_for(exc: BaseException) -> int:
    """The exit code an error ends the command with."""
    from ember.sdk import errors

    if isinstance(exc, errors.ResourceNotFoundException):
        return ExitCode.NOT_FOUND
    if isinstance(exc, errors.ConflictException | errors.ResourceConflictException):
        return ExitCode.CONFLICT
    if isinstance(exc, ValueError):
        return ExitCode.USAGE
    return ExitCode.ERROR


@contextlib.contextmanager
def errors_to_exit_codes() -> Iterator[None]:
    """Turn SDK, Ember and OS errors into one red line and ``exit_code_for`` (no traceback)."""
    try:
        yield
    except (EmberError, ValueError) as exc:
        fail(str(exc), exit_code_for(exc))
    except OSError as exc:
        fail(f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""))
    except KeyboardInterrupt:
        fail("interrupted", ExitCode.INTERRUPTED)


def with_client(fn: F) -> F:
    """Add ``--endpoint``/``--region``, pass a ready ``client=`` to the command, close it, map errors."""

    @click.option("--region", envvar="EMBER_REGION", metavar="REGION",
                  help="Region to sign requests for. [env: EMBER_REGION, then AWS_REGION; default: us-east-1]")
    @click.option("--endpoint", envvar="EMBER_ENDPOINT", metavar="URL",
                  help="Ember API URL. [env: EMBER_ENDPOINT; default: http://127.0.0.1:9180]")
    @wraps(fn)
    def wrapper(*args: Any, endpoint: str | None, region: str | None, **kwargs: Any) -> Any:
        from ember.sdk import Client

        with errors_to_exit_codes():
            client = Client(endpoint=endpoint, region=region)
            try:
                return fn(*args, client=client, **kwargs)
            finally:
                client.close()

    return wrapper  # type: ignore[return-value]


def json_option(fn: F) -> F:
    """``--json``: print the API's JSON instead of a table."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON (the API's wire form) instead of text.")(fn)


def wire(value: Any) -> Any:
    """JSON-ready form of a response model (or a list of them): wire names, no nulls, ISO 8601 times."""
    from pydantic import BaseModel

    if isinstance(value, BaseModel):
        return _iso_times(value.model_dump(by_alias=True, exclude_none=True))
    if isinstance(value, list | tuple):
        return [wire(v) for v in value]
    return value


def _iso_times(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _iso_times(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_iso_times(v) for v in value]
    return value


def print_json(value: Any) -> None:
    """``value`` (models welcome) as indented JSON on stdout."""
    click.echo(json.dumps(wire(value), indent=2, default=str))


def styled_state(state: str) -> str:
    """Rich markup for a state, coloured by what it means."""
    style = STATE_STYLES.get(str(state))
    return f"[{style}]{state}[/]" if style else str(state)


def ago(when: datetime | None, now: datetime | None = None) -> str:
    """``3m ago`` style age of ``when`` (``-`` when unknown)."""
    if when is None:
        return "-"
    from ember.cli.types import format_duration

    delta = ((now or datetime.now(UTC)) - when).total_seconds()
    return f"{format_duration(max(0, delta))} ago"


def short_image(arn: str) -> str:
    """The image name of an image ARN (``arn:…:microvm-image:ci`` → ``ci``)."""
    return arn.rsplit(":", 1)[-1]


def table(*columns: str) -> Any:
    """A borderless rich table with bold headers (add rows, then ``out().print`` it)."""
    from rich.table import Table

    t = Table(box=None, header_style="bold", pad_edge=False)
    for column in columns:
        t.add_column(column, overflow="fold")
    return t


def fields(values: dict[str, str]) -> None:
    """Print ``key  value`` lines with the keys aligned (rich markup allowed in values)."""
    console = out()
    width = max(len(k) for k in values)
    for key, value in values.items():
        console.print(f"[bold]{key:<{width}}[/]  {value}")
