"""`ember setup`: install host packages and build the guest kit, showing each step and its duration."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.status import Status

from ember.cli.main import friendly_errors


class RichProgress:
    """Renders kit build steps: a spinner while a step runs, then one line with its duration."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._status: Status | None = None

    def start(self, step: str) -> None:
        self._stop()
        self._status = self.console.status(f"{step} …")
        self._status.start()

    def note(self, step: str, message: str) -> None:
        if self._status is not None:
            self._status.update(f"{step}: {message} …")
        else:
            self.console.print(f"  {step}: {message}", style="dim")

    def done(self, step: str, detail: str, seconds: float, cached: bool) -> None:
        self._stop()
        took = "cached" if cached else f"{seconds:.1f} s"
        self.console.print(f"[green]✓[/] {step:<13} {detail}  [dim]({took})[/]", highlight=False)

    def _stop(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None


@click.command()
@click.option("--no-install", is_flag=True, help="Do not apt-get install missing host packages; only check.")
@click.option("--json", "as_json", is_flag=True, help="Print the kit's paths as JSON on stdout.")
@click.option("--bases/--no-bases", default=True, show_default=True,
              help="Also build the managed base images (debian-bookworm, python-3.11) that Dockerfiles start FROM.")
@friendly_errors
def setup(no_install: bool, as_json: bool, bases: bool) -> None:
    """Install and build what Ember needs to boot VMs (kernel, initramfs, runtime disk).

    Installs missing host packages (QEMU, busybox, e2fsprogs, mmdebstrap; needs
    root), downloads the Debian cloud kernel, builds the initramfs and the
    read-only runtime disk under $EMBER_HOME/kit. Every step is cached: a second
    run only checks, and rebuilds what changed (e.g. the guest agent's sources).

    \b
    Example:
      $ sudo ember setup
      ✓ packages      6 host packages present  (cached)
      ✓ kernel        6.1.0-56-cloud-amd64  (cached)
      ...
      $ ember setup --no-install --json
    """
    from ember.host.kit import ensure_kit, kit_sizes

    console = Console(stderr=True, soft_wrap=True)
    progress = RichProgress(console)
    try:
        kit = ensure_kit(progress=progress, install_packages=not no_install)
        built_bases = _ensure_bases(progress) if bases else []
    finally:
        progress._stop()
    if as_json:
        click.echo(
            json.dumps(
                {
                    "kernel": str(kit.kernel),
                    "initrd": str(kit.initrd),
                    "runtime_disk": str(kit.runtime_disk),
                    "kernel_release": kit.kernel_release,
                    "key": kit.key,
                    "bases": {b.name: {"version": b.version, "rootfs": str(b.rootfs)} for b in built_bases},
                },
                indent=2,
            )
        )
    else:
        sizes = kit_sizes(kit)
        console.print(
            f"[bold green]kit ready[/] {kit.key}: kernel {kit.kernel_release}, "
            f"initrd {sizes['initrd'] / 1e6:.1f} MB, runtime disk {sizes['runtime_disk'] / 1e6:.0f} MB used",
            highlight=False,
        )


def _ensure_bases(progress: RichProgress) -> list:  # type: ignore[type-arg]
    """Build (or find cached) every managed base image, one progress line each."""
    import time

    from ember.images.bases import MANAGED_BASES, ensure_base, list_bases

    built = []
    for name in MANAGED_BASES:
        step = f"base {name}"
        progress.start(step)
        t0 = time.monotonic()
        before = {b.version for b in list_bases() if b.name == name}
        base = ensure_base(name, progress=lambda msg, step=step: progress.note(step, msg))
        progress.done(step, base.version, time.monotonic() - t0, cached=base.version in before)
        built.append(base)
    return built
