"""`ember top`: MicroVMs by state in a live table."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click
from rich.console import Group
from rich.markup import escape
from rich.text import Text

from ember.cli._common import ago, out, short_image, styled_state, table, with_client
from ember.cli.types import DURATION

if TYPE_CHECKING:
    from ember.contract import MicrovmItem
    from ember.sdk import Client

STATE_ORDER = ("RUNNING", "PENDING", "SUSPENDING", "SUSPENDED", "TERMINATING", "TERMINATED")


def render(items: list[MicrovmItem], *, endpoint: str, now: datetime | None = None) -> Any:
    """The screen: a line of counts by state, then one row per MicroVM (busiest states first)."""
    now = now or datetime.now(UTC)
    counts = Counter(str(vm.state) for vm in items)
    summary = "  ".join(f"{styled_state(s)} {counts[s]}" for s in STATE_ORDER if counts[s]) or "no MicroVMs"
    header = Text.from_markup(f"[bold]{endpoint}[/]  {now:%H:%M:%S}  {summary}")
    rows = table("ID", "STATE", "IMAGE", "VERSION", "STARTED")
    rank = {s: i for i, s in enumerate(STATE_ORDER)}
    for vm in sorted(items, key=lambda v: (rank.get(str(v.state), 99), -v.startedAt.timestamp())):
        rows.add_row(vm.microvmId, styled_state(vm.state), escape(short_image(vm.imageArn)), vm.imageVersion,
                     ago(vm.startedAt, now))
    return Group(header, rows)


@click.command()
@click.option("--watch", "-w", is_flag=True, help="Refresh until Ctrl-C instead of printing once.")
@click.option("--interval", type=DURATION, default="2s", show_default=True, help="With --watch: time between "
                                                                                "refreshes.")
@click.option("--all", "-a", "show_all", is_flag=True, help="Include TERMINATED MicroVMs.")
@click.option("--image", help="Only MicroVMs of this image.")
@with_client
def top(client: Client, watch: bool, interval: int, show_all: bool, image: str | None) -> None:
    """Show MicroVMs by state, once or live (--watch).

    A line of counts per state, then a row per MicroVM, busiest states first.

    \b
    Example:
      $ ember top --watch --interval 5s
      http://127.0.0.1:9180  12:00:01  RUNNING 3  SUSPENDED 5
    """
    console = out()
    if not watch:
        console.print(render(client.microvms.list(all=show_all, image=image), endpoint=client.endpoint))
        return
    from rich.live import Live

    with Live(console=console, auto_refresh=False, screen=False) as live:
        try:
            while True:
                items = client.microvms.list(all=show_all, image=image)
                live.update(render(items, endpoint=client.endpoint), refresh=True)
                time.sleep(max(1, interval))
        except KeyboardInterrupt:
            pass
