"""`ember image …`: build images from a folder with a Dockerfile, list and inspect them, read build logs."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.markup import escape

from ember.cli._common import (
    ExitCode,
    ago,
    err,
    fields,
    json_option,
    out,
    print_json,
    styled_state,
    table,
    with_client,
)
from ember.cli.types import DURATION, HOOKS, KEY_VALUE, SIZE, format_duration

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from ember.contract import MicrovmImageVersion
    from ember.sdk import Client

LOG_DRAIN_S = 5.0
"""After a build ends, how long to wait for the rest of its log before printing the outcome."""
PROGRESS_MIN_BYTES = 4 * 1024 * 1024
"""Uploads at least this big show a progress bar."""


@click.group()
def image() -> None:
    """Build and manage images (Dockerfile folders, snapshotted).

    An image version is a MicroVM booted from a Dockerfile and snapshotted once
    the app is ready; every MicroVM run from it is a clone of that snapshot.

    \b
    Example:
      $ ember image build ./code-interpreter --name ci --hooks ready,run --wait
      $ ember image ls
    """


@image.command()
@click.argument("directory", type=click.Path(exists=True, path_type=Path))
@click.option("--name", "-n", required=True, help="Image name (1-64 of a-z A-Z 0-9 - _); updated if it exists.")
@click.option("--memory", type=SIZE, help="MicroVM memory, e.g. 512M or 2G (128M-32G; vCPUs = GiB / 2). "
                                          "[default: 512M]")
@click.option("--env", "env", type=KEY_VALUE, multiple=True, help="Environment variable of the app, KEY=VALUE "
                                                                  "(repeatable; every clone shares it).")
@click.option("--build-arg", type=KEY_VALUE, multiple=True, help="Value for an ARG of the Dockerfile, KEY=VALUE "
                                                                 "(repeatable).")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True,
              help="Port of the app's hook server (the hooks are served on the app port in most apps).")
@click.option("--hooks", type=HOOKS, help="Hooks the app serves, comma-separated: ready,validate,run,resume,"
                                          "suspend,terminate. [default: none; readiness = the port answering]")
@click.option("--base", "base_image", metavar="NAME", help="Managed base recorded as baseImageArn "
                                                          "(python-3.11, debian-bookworm). [default: python-3.11]")
@click.option("--disk", type=SIZE, help="Disk size of each MicroVM, e.g. 2G. [default: 2G]")
@click.option("--egress", is_flag=True, help="Let the MicroVMs reach the internet (INTERNET_EGRESS).")
@click.option("--description", help="Free text stored with the version.")
@click.option("--wait", is_flag=True, help="Stream the build log and wait until the version is ready.")
@click.option("--timeout", type=DURATION, default="30m", show_default=True, help="With --wait: give up after this "
                                                                                 "long (e.g. 45m).")
@json_option
@with_client
def build(client: Client, directory: Path, name: str, memory: int | None, env: tuple[tuple[str, str], ...],
          build_arg: tuple[tuple[str, str], ...], port: int, hooks: list[str] | None, base_image: str | None,
          disk: int | None, egress: bool, description: str | None, wait: bool, timeout: int, as_json: bool) -> None:
    """Build an image from a folder with a Dockerfile.

    Zips DIRECTORY (leaving out .git, __pycache__ and .venv), uploads it to
    the server (POST /ember/artifacts; the server may be on another machine),
    then creates the image NAME, or updates it when it exists: every build is
    a new version. With --wait it streams the build log under a live status
    line and exits 0 once the version is SUCCESSFUL (1 if the build fails).

    \b
    Example:
      $ ember image build ./code-interpreter --name ci --memory 1G \\
          --hooks ready,validate,run,resume,suspend --wait
      ✓ ci version 1 SUCCESSFUL in 2m14s
    """
    with UploadProgress(err()) as on_upload:
        response = client.images.build(
            name, directory, memory_mib=memory, env=dict(env) or None, build_args=dict(build_arg) or None,
            hooks=hooks, hooks_port=port, base_image=base_image, disk_size_mib=disk, egress=egress,
            description=description, on_upload=on_upload)
    version = response.imageVersion
    console = err()
    console.print(f"image [bold]{escape(name)}[/] version {version}: build started ({response.imageArn})")
    if not wait:
        if as_json:
            print_json(response)
        else:
            console.print(f"follow it with: ember image logs {name} {version} -f")
        return
    final = follow_build(client, name, version, timeout)
    if as_json:
        print_json(final)


class UploadProgress:
    """A progress bar on stderr for an upload of at least ``PROGRESS_MIN_BYTES`` (smaller ones go up silently)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> UploadProgress:
        return self

    def __call__(self, sent: int, total: int) -> None:
        if self._progress is None:
            if total < PROGRESS_MIN_BYTES:
                return
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

            self._progress = Progress(TextColumn("uploading"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                                      console=self.console, transient=True)
            self._progress.start()
            self._task = self._progress.add_task("upload", total=total)
        assert self._task is not None
        self._progress.update(self._task, completed=sent)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()


def follow_build(client: Client, name: str, version: str, timeout: float) -> MicrovmImageVersion:
    """Stream the build log under a live status line until the version is done; return the final version."""
    from ember.sdk import SdkError, WaitFailed

    console = err()
    started = time.monotonic()

    def pump() -> None:
        try:
            for line in client.images.build_logs(name, version, follow=True):
                console.print(escape(line.line), style="red" if line.stream == "stderr" else None)
        except SdkError:
            pass  # the log is a convenience; the version's state decides the outcome

    reader = threading.Thread(target=pump, name="build-log", daemon=True)
    reader.start()
    try:
        with console.status(f"building {name} version {version} …") as status:
            def progress(v: MicrovmImageVersion) -> None:
                elapsed = format_duration(time.monotonic() - started)
                status.update(f"building [bold]{escape(name)}[/] version {version}: {styled_state(v.state)} "
                              f"({elapsed})")

            final = client.images.wait_for_version(name, version, timeout=timeout, on_progress=progress)
    except WaitFailed as exc:
        reader.join(LOG_DRAIN_S)
        raise SdkError(f"build of {name} version {version} failed: {exc}") from None
    except KeyboardInterrupt:
        console.print(f"stopped following; the build goes on (ember image logs {name} {version} -f)")
        raise
    reader.join(LOG_DRAIN_S)
    took = format_duration(time.monotonic() - started)
    console.print(f"[green]✓[/] {escape(name)} version {version} {styled_state(final.state)} in {took}")
    return final


@image.command(name="ls")
@click.option("--filter", "name_filter", metavar="TEXT", help="Only images whose name contains TEXT.")
@json_option
@with_client
def list_images(client: Client, name_filter: str | None, as_json: bool) -> None:
    """List images with their state and latest versions.

    \b
    Example:
      $ ember image ls
      NAME  STATE    ACTIVE  FAILED  CREATED
      ci    UPDATED  2       -       3h ago
    """
    images = client.images.list(name_filter=name_filter)
    if as_json:
        print_json(images)
        return
    rows = table("NAME", "STATE", "ACTIVE", "FAILED", "CREATED")
    for i in images:
        rows.add_row(escape(i.name), styled_state(i.state), i.latestActiveImageVersion or "-",
                     i.latestFailedImageVersion or "-", ago(i.createdAt))
    out().print(rows)


@image.command(name="get")
@click.argument("image_id", metavar="IMAGE")
@json_option
@with_client
def get_image(client: Client, image_id: str, as_json: bool) -> None:
    """Show one image (by name or ARN).

    \b
    Example:
      $ ember image get ci --json
    """
    detail = client.images.get(image_id)
    if as_json:
        print_json(detail)
        return
    fields({"name": detail.name, "arn": detail.imageArn, "state": styled_state(detail.state),
             "latest active": detail.latestActiveImageVersion or "-",
             "latest failed": detail.latestFailedImageVersion or "-",
             "created": f"{detail.createdAt:%Y-%m-%d %H:%M:%S} ({ago(detail.createdAt)})",
             "tags": ", ".join(f"{k}={v}" for k, v in (detail.tags or {}).items()) or "-"})


@image.command()
@click.argument("image_id", metavar="IMAGE")
@json_option
@with_client
def versions(client: Client, image_id: str, as_json: bool) -> None:
    """List an image's versions with build state and settings.

    \b
    Example:
      $ ember image versions ci
      VERSION  STATE       STATUS  MEMORY  HOOKS                CREATED  REASON
      1        SUCCESSFUL  ACTIVE  1024M   ready,validate,run   3h ago   -
    """
    items = client.images.versions(image_id)
    if as_json:
        print_json(items)
        return
    rows = table("VERSION", "STATE", "STATUS", "MEMORY", "HOOKS", "CREATED", "REASON")
    for v in items:
        rows.add_row(v.imageVersion, styled_state(v.state), styled_state(v.status), f"{v.memory_mib()}M",
                     _hook_names(v) or "-", ago(v.createdAt), escape(v.stateReason or "-"))
    out().print(rows)


@image.command()
@click.argument("image_id", metavar="IMAGE")
@click.argument("version", required=False)
@json_option
@with_client
def builds(client: Client, image_id: str, version: str | None, as_json: bool) -> None:
    """List the builds of an image version (the newest by default).

    \b
    Example:
      $ ember image builds ci 2
      BUILD                             STATE       ARCH    CREATED  REASON
      4f0c…                             SUCCESSFUL  X86_64  3h ago   -
    """
    version = version or _newest_version(client, image_id)
    items = client.images.builds(image_id, version)
    if as_json:
        print_json(items)
        return
    rows = table("BUILD", "STATE", "ARCH", "CHIPSET", "CREATED", "REASON")
    for b in items:
        rows.add_row(b.buildId, styled_state(b.buildState), b.architecture, b.chipset, ago(b.createdAt),
                     escape(b.stateReason or "-"))
    out().print(rows)


@image.command()
@click.argument("image_id", metavar="IMAGE")
@click.argument("version", required=False)
@click.option("--follow", "-f", is_flag=True, help="Keep printing lines until the build ends.")
@with_client
def logs(client: Client, image_id: str, version: str | None, follow: bool) -> None:
    """Print the build log of an image version (the newest by default).

    \b
    Example:
      $ ember image logs ci 2 -f
    """
    version = version or _newest_version(client, image_id)
    for line in client.images.build_logs(image_id, version, follow=follow):
        click.echo(line.line)


@image.command(name="rm")
@click.argument("images", metavar="IMAGE...", nargs=-1, required=True)
@click.option("--version", help="Delete only this version of each image.")
@with_client
def remove(client: Client, images: tuple[str, ...], version: str | None) -> None:
    """Delete images, or one version of each.

    Deleting an already deleted image succeeds.

    \b
    Example:
      $ ember image rm ci
      $ ember image rm ci --version 1
    """
    for name in images:
        if version:
            client.images.delete_version(name, version)
            err().print(f"deleted {escape(name)} version {version}")
        else:
            result = client.images.delete(name)
            err().print(f"deleted {escape(name)} ({result.state})")


def _newest_version(client: Client, image_id: str) -> str:
    items = client.images.versions(image_id)
    if not items:
        from ember.cli.main import fail

        fail(f"image {image_id} has no versions", ExitCode.NOT_FOUND)
    return max(items, key=lambda v: (v.createdAt, v.imageVersion)).imageVersion


def _hook_names(version: Any) -> str:
    hooks = version.hooks
    if hooks is None:
        return ""
    names = []
    for group in (hooks.microvmImageHooks, hooks.microvmHooks):
        if group is not None:
            names += [k.removesuffix("_") for k, v in group.model_dump().items() if v == "ENABLED"]
    return ",".join(names)
