"""`ember logs`: a MicroVM's app output (stdout and stderr), optionally followed live."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ember.cli._common import with_client

if TYPE_CHECKING:
    from ember.sdk import Client


@click.command()
@click.argument("microvm_id", metavar="ID")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until the MicroVM terminates (Ctrl-C "
                                                   "stops).")
@click.option("--since", type=click.IntRange(0), default=0, show_default=True, metavar="N",
              help="Start after line N (lines are numbered from 1).")
@click.option("--timestamps", "-t", is_flag=True, help="Prefix each line with its time (UTC) and stream.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per line: seq, time, stream, line.")
@with_client
def logs(client: Client, microvm_id: str, follow: bool, since: int, timestamps: bool, as_json: bool) -> None:
    """Print what a MicroVM's app wrote to stdout and stderr.

    Lines are kept per MicroVM while it exists, suspended time included;
    an image with logging disabled keeps none. Use --since with the last
    line number seen to read only what is new.

    \b
    Example:
      $ ember logs $ID -f -t
      2025-11-23T12:00:01Z stdout  code interpreter listening on 8080
    """
    for line in client.microvms.logs(microvm_id, follow=follow, since=since):
        if as_json:
            click.echo(line.model_dump_json())
        elif timestamps:
            click.echo(f"{line.time:%Y-%m-%dT%H:%M:%SZ} {line.stream:<7} {line.line}")
        else:
            click.echo(line.line)
