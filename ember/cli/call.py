"""`ember call`: one HTTP request to a MicroVM's app through the gateway, with a fresh token."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click

from ember.cli._common import ExitCode, err, with_client
from ember.cli.types import DURATION

if TYPE_CHECKING:
    from ember.sdk import Client


def _read_data(data: str) -> bytes:
    if data == "-":
        return sys.stdin.buffer.read()
    if data.startswith("@"):
        with open(data[1:], "rb") as f:
            return f.read()
    return data.encode()


def _content_type(body: bytes) -> str:
    try:
        json.loads(body)
    except ValueError:
        return "text/plain; charset=utf-8"
    return "application/json"


@click.command()
@click.argument("microvm_id", metavar="ID")
@click.argument("path", default="/")
@click.option("--request", "-X", "method", metavar="METHOD", help="HTTP method. [default: GET, or POST with -d]")
@click.option("--data", "-d", metavar="DATA", help="Request body: text, @FILE or - for stdin (JSON bodies are sent "
                                                   "as application/json).")
@click.option("--header", "-H", "headers", multiple=True, metavar="'NAME: VALUE'", help="Extra request header "
                                                                                       "(repeatable).")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True, help="App port to reach.")
@click.option("--include", "-i", is_flag=True, help="Also print the response headers.")
@click.option("--timeout", type=DURATION, default="2m", show_default=True, help="Give up after this long.")
@with_client
def call(client: Client, microvm_id: str, path: str, method: str | None, data: str | None,
         headers: tuple[str, ...], port: int, include: bool, timeout: int) -> None:
    """Send an HTTP request to a MicroVM's app; print the answer.

    Mints a token, sends the request through the gateway (a suspended
    MicroVM with auto-resume wakes up first) and prints the status line on
    stderr and the body on stdout. Retries while the VM resumes (502) or
    is rate limited (429). Exits 0 for a 1xx-3xx answer, 1 otherwise.

    \b
    Example:
      $ ember call $ID /execute -d '{"code": "x = 41"}'
      $ ember call $ID /state
      $ ember call $ID /file?path=notes.txt --port 8080 -i
    """
    body = _read_data(data) if data is not None else None
    sent: dict[str, str] = {}
    for header in headers:
        name, sep, value = header.partition(":")
        if not sep or not name.strip():
            raise click.BadParameter(f"{header!r} is not 'NAME: VALUE'", param_hint="--header")
        sent[name.strip()] = value.strip()
    if body is not None and not any(k.lower() == "content-type" for k in sent):
        sent["Content-Type"] = _content_type(body)
    verb = (method or ("POST" if body is not None else "GET")).upper()
    response = client.microvms.handle(microvm_id).request(verb, path, content=body, headers=sent, port=port,
                                                          timeout=timeout)
    console = err()
    style = "green" if response.status_code < 400 else "red"
    console.print(f"[{style}]HTTP {response.status_code} {response.reason_phrase}[/]")
    if include:
        for name, value in response.headers.items():
            console.print(f"{name}: {value}", markup=False)
    click.echo(response.content, nl=bool(response.content) and not response.content.endswith(b"\n"))
    if response.status_code >= 400:
        sys.exit(ExitCode.ERROR)
