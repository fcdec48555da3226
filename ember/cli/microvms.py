"""`ember run|ls|get|suspend|resume|terminate|token`: launch MicroVMs from images and manage their lifecycle."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click
from rich.markup import escape

from ember.cli._common import (
    ExitCode,
    ago,
    err,
    exit_code_for,
    fields,
    json_option,
    out,
    print_json,
    short_image,
    styled_state,
    table,
    with_client,
)
from ember.cli.types import DURATION, format_duration

if TYPE_CHECKING:
    from ember.sdk import Client


@click.command()
@click.argument("image")
@click.option("--version", help="Image version to run. [default: the image's latest ACTIVE version]")
@click.option("--idle", type=DURATION, envvar="EMBER_IDLE",
              help="Suspend after this long without inbound requests, e.g. 5m (at least 60s). "
                   "[default: never; env: EMBER_IDLE]")
@click.option("--suspended-for", type=DURATION, help="Terminate after this long suspended, e.g. 1h "
                                                     "(needs --idle). [default: until --max-duration]")
@click.option("--no-auto-resume", is_flag=True, help="A request to a suspended MicroVM gets 502 instead of "
                                                     "waking it (needs --idle).")
@click.option("--max-duration", type=DURATION, help="Terminate this long after the launch, suspended time "
                                                    "included, e.g. 8h (1s-8h). [default: 8h]")
@click.option("--payload", help="Text handed to the app's run hook as runHookPayload (up to 16 KiB); @FILE "
                                "reads a file.")
@click.option("--shell", is_flag=True, help="Allow `ember shell` (adds the SHELL_INGRESS connector).")
@click.option("--egress", is_flag=True, help="Let the MicroVM reach the internet (INTERNET_EGRESS).")
@click.option("--wait", is_flag=True, help="Wait until the MicroVM is RUNNING.")
@click.option("--timeout", type=DURATION, default="5m", show_default=True, help="With --wait: give up after this "
                                                                                "long.")
@json_option
@with_client
def run(client: Client, image: str, version: str | None, idle: int | None, suspended_for: int | None,
        no_auto_resume: bool, max_duration: int | None, payload: str | None, shell: bool, egress: bool, wait: bool,
        timeout: int, as_json: bool) -> None:
    """Launch a MicroVM from an image; prints its id.

    The MicroVM is a clone of the image's snapshot: it starts PENDING and is
    RUNNING once the app's run hook answered. The id goes to stdout (the
    details to stderr), so scripts can capture it.

    \b
    Example:
      $ ID=$(ember run ci --idle 5m --suspended-for 1h --wait)
      $ ember call $ID /execute -d '{"code": "print(6 * 7)"}'
    """
    if payload and payload.startswith("@"):
        with open(payload[1:], encoding="utf-8") as f:
            payload = f.read()
    if (suspended_for is not None or no_auto_resume) and idle is None:
        raise click.UsageError("--suspended-for and --no-auto-resume need --idle (they are parts of the idle policy)")
    vm = client.microvms.run(image, version=version, idle=idle, suspended_for=suspended_for,
                             auto_resume=not no_auto_resume, max_duration=max_duration, payload=payload,
                             shell=shell, egress=egress)
    console = err()
    detail = vm.detail
    assert detail is not None
    if wait:
        with console.status(f"{vm.id} {detail.state} …") as status:
            detail = vm.wait_for_state("RUNNING", timeout=timeout,
                                       on_progress=lambda d: status.update(f"{vm.id} {styled_state(d.state)} …"))
    if as_json:
        print_json(detail)
        return
    click.echo(vm.id)
    console.print(f"{styled_state(detail.state)}  image {escape(short_image(detail.imageArn))} version "
                  f"{detail.imageVersion}  endpoint {detail.endpoint}")


@click.command(name="ls")
@click.option("--all", "-a", "show_all", is_flag=True, help="Include TERMINATED MicroVMs.")
@click.option("--image", help="Only MicroVMs of this image (name or ARN).")
@json_option
@with_client
def list_microvms(client: Client, show_all: bool, image: str | None, as_json: bool) -> None:
    """List MicroVMs (TERMINATED ones only with --all).

    \b
    Example:
      $ ember ls
      ID                                    STATE      IMAGE  VERSION  STARTED
      mvm-3f2a…                             RUNNING    ci     1        2m ago
    """
    items = client.microvms.list(all=show_all, image=image)
    if as_json:
        print_json(items)
        return
    rows = table("ID", "STATE", "IMAGE", "VERSION", "STARTED")
    for vm in items:
        rows.add_row(vm.microvmId, styled_state(vm.state), escape(short_image(vm.imageArn)), vm.imageVersion,
                     ago(vm.startedAt))
    out().print(rows)


@click.command(name="get")
@click.argument("microvm_id", metavar="ID")
@json_option
@with_client
def get_microvm(client: Client, microvm_id: str, as_json: bool) -> None:
    """Show one MicroVM: state, endpoint, image, idle policy.

    \b
    Example:
      $ ember get mvm-3f2a… --json | jq -r .endpoint
    """
    d = client.microvms.get(microvm_id)
    if as_json:
        print_json(d)
        return
    idle = "never suspended"
    if d.idlePolicy is not None:
        p = d.idlePolicy
        idle = (f"suspend after {format_duration(p.maxIdleDurationSeconds)} idle, terminate after "
                f"{format_duration(p.suspendedDurationSeconds) if p.suspendedDurationSeconds else 'max duration'} "
                f"suspended, auto-resume {'on' if p.autoResumeEnabled else 'off'}")
    values = {"id": d.microvmId, "state": styled_state(d.state), "endpoint": d.endpoint,
              "image": f"{escape(short_image(d.imageArn))} version {d.imageVersion}", "idle": idle,
              "max duration": format_duration(d.maximumDurationInSeconds),
              "started": f"{d.startedAt:%Y-%m-%d %H:%M:%S} ({ago(d.startedAt)})"}
    if d.terminatedAt is not None:
        values["terminated"] = f"{d.terminatedAt:%Y-%m-%d %H:%M:%S} ({ago(d.terminatedAt)})"
    if d.stateReason:
        values["reason"] = escape(d.stateReason)
    connectors = [c.rsplit(":", 1)[-1] for c in (d.ingressNetworkConnectors or []) + (d.egressNetworkConnectors or [])]
    if connectors:
        values["connectors"] = ", ".join(connectors)
    fields(values)


def _each(client: Client, ids: tuple[str, ...], verb: str, action: str, target: str | None, wait: bool,
          timeout: int) -> None:
    """Apply ``action`` to every id; report each; exit with the code of the last failure."""
    from ember.sdk import SdkError

    console = err()
    code = ExitCode.OK
    for microvm_id in ids:
        try:
            getattr(client.microvms, action)(microvm_id)
            if wait and target:
                client.microvms.wait_for_state(microvm_id, target, timeout=timeout)
            console.print(f"{verb} {microvm_id}")
        except SdkError as exc:
            console.print(f"[bold red]error:[/] {escape(microvm_id)}: {escape(str(exc))}")
            code = ExitCode(exit_code_for(exc))
    if code:
        sys.exit(code)


def _lifecycle_command(name: str, verb: str, target: str, summary: str, example: str) -> click.Command:
    @click.command(name=name, help=f"{summary}\n\n\b\nExample:\n  {example}")
    @click.argument("ids", metavar="ID...", nargs=-1, required=True)
    @click.option("--wait", is_flag=True, help=f"Wait until each MicroVM is {target}.")
    @click.option("--timeout", type=DURATION, default="5m", show_default=True, help="With --wait: per MicroVM.")
    @with_client
    def command(client: Client, ids: tuple[str, ...], wait: bool, timeout: int) -> None:
        _each(client, ids, verb, name, target, wait, timeout)

    return command


suspend = _lifecycle_command(
    "suspend", "suspended", "SUSPENDED",
    "Suspend MicroVMs, keeping memory and disk.\n\n"
    "RUNNING → SUSPENDING → SUSPENDED; the VM's process stops until a resume.",
    "$ ember suspend mvm-3f2a… --wait")
resume = _lifecycle_command(
    "resume", "resumed", "RUNNING",
    "Resume suspended MicroVMs with their state intact.\n\n"
    "With auto-resume on, a request to the endpoint also resumes a MicroVM.",
    "$ ember resume mvm-3f2a…")
terminate = _lifecycle_command(
    "terminate", "terminated", "TERMINATED",
    "Terminate MicroVMs for good (terminating twice succeeds).",
    "$ ember terminate $(ember ls --json | jq -r '.[].microvmId')")


@click.command()
@click.argument("microvm_id", metavar="ID")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True,
              help="App port the token allows (sent as X-aws-proxy-port when not 8080).")
@click.option("--minutes", type=click.IntRange(1, 60), default=15, show_default=True,
              help="Lifetime of the token in minutes (1-60).")
@json_option
@with_client
def token(client: Client, microvm_id: str, port: int, minutes: int, as_json: bool) -> None:
    """Print a new token for a MicroVM's endpoint (for curl etc.).

    Send it as the X-aws-proxy-auth header (and the port as X-aws-proxy-port),
    or as the WebSocket subprotocol lambda-microvms.authentication.TOKEN.

    \b
    Example:
      $ ember token $ID --port 8080 --minutes 5
      ember1.eyJhY2N0Ijoi…
      $ curl --cacert "$(ember ca)" -H "X-aws-proxy-auth: $(ember token $ID)" \\
          "https://$(ember get $ID --json | jq -r .endpoint)/state"
    """
    headers = client.microvms.token(microvm_id, port=port, minutes=minutes)
    if as_json:
        click.echo(json.dumps({"authToken": headers, "port": port, "expirationInMinutes": minutes}, indent=2))
        return
    click.echo(headers.get("X-aws-proxy-auth") or next(iter(headers.values())))
