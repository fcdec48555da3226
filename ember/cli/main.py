"""The `ember` command line: a click group whose commands live in one module each under ``ember.cli``."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click

from ember import __version__
from ember.errors import EmberError

# command name -> "module:attribute"; modules are imported only when their command is used
# (or listed in --help), so one broken or slow command never slows down the others.
COMMANDS: dict[str, str] = {
    "setup": "ember.cli.setup:setup",
    "demo": "ember.cli.demo:demo",
    "serve": "ember.cli.serve:serve",
    "credentials": "ember.cli.credentials:credentials",
    "ca": "ember.cli.credentials:ca",
    "image": "ember.cli.images:image",
    "run": "ember.cli.microvms:run",
    "ls": "ember.cli.microvms:list_microvms",
    "get": "ember.cli.microvms:get_microvm",
    "suspend": "ember.cli.microvms:suspend",
    "resume": "ember.cli.microvms:resume",
    "terminate": "ember.cli.microvms:terminate",
    "token": "ember.cli.microvms:token",
    "call": "ember.cli.call:call",
    "logs": "ember.cli.logs:logs",
    "shell": "ember.cli.shell:shell",
    "top": "ember.cli.top:top",
}

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 1) -> None:
    """Print one red error line on stderr and exit with ``code`` (no traceback)."""
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True, highlight=False, soft_wrap=True).print(f"[bold red]error:[/] {escape(message)}", markup=True)
    sys.exit(code)


def friendly_errors(fn: F) -> F:
    """Turn Ember's deliberate errors (and OS errors) into one red line and exit code 1."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except EmberError as exc:
            fail(str(exc))
        except OSError as exc:
            fail(f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""))
        except KeyboardInterrupt:
            fail("interrupted", 130)

    return wrapper  # type: ignore[return-value]


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        cmd = super().get_command(ctx, cmd_name)
        if cmd is not None or cmd_name not in COMMANDS:
            return cmd
        module, _, attr = COMMANDS[cmd_name].partition(":")
        try:
            found = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError):
            return None  # a command still being written elsewhere; leave it out
        return found if isinstance(found, click.Command) else None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ember")
def main() -> None:
    """Ember: isolated, stateful microVM sandboxes cloned from snapshots."""


if __name__ == "__main__":  # pragma: no cover
    main()
