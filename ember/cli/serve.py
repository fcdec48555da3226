"""`ember serve`: run the control-plane API, the gateway and this machine's MicroVMs in one process."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import click

from ember.cli._common import err, errors_to_exit_codes

if TYPE_CHECKING:
    from ember.server import ServeSettings

LOG_LEVELS = ("debug", "info", "warning", "error")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, envvar="EMBER_HOST",
              help="Address the API and the gateway listen on. [env: EMBER_HOST]")
@click.option("--port", type=click.IntRange(0, 65535), default=9180, show_default=True, envvar="EMBER_PORT",
              help="Port of the control-plane API (SigV4, service `lambda`). [env: EMBER_PORT]")
@click.option("--gateway-port", type=click.IntRange(0, 65535), default=9443, show_default=True,
              envvar="EMBER_GATEWAY_PORT", help="Port of the data-plane gateway (MicroVM endpoints). "
                                                "[env: EMBER_GATEWAY_PORT]")
@click.option("--domain", envvar="EMBER_DOMAIN", metavar="DOMAIN",
              help="Wildcard domain for endpoints ({id}.DOMAIN:PORT); without it endpoints are path-routed "
                   "(HOST:PORT/microvms/{id}). [env: EMBER_DOMAIN]")
@click.option("--no-tls", is_flag=True, envvar="EMBER_NO_TLS",
              help="Serve the gateway over plain HTTP instead of TLS with Ember's CA (clients then need "
                   "EMBER_GATEWAY_SCHEME=http). [env: EMBER_NO_TLS]")
@click.option("--region", default="us-east-1", show_default=True, envvar="EMBER_REGION",
              help="Region in ARNs and in the SigV4 scope clients sign for. [env: EMBER_REGION]")
@click.option("--log-level", type=click.Choice(LOG_LEVELS), default="warning", show_default=True,
              envvar="EMBER_LOG_LEVEL", help="Least severe log records printed on stderr. [env: EMBER_LOG_LEVEL]")
def serve(host: str, port: int, gateway_port: int, domain: str | None, no_tls: bool, region: str,
          log_level: str) -> None:
    """Run the API, the gateway and this machine's MicroVMs.

    Starts the control-plane API (the Lambda MicroVMs REST API, signed with
    SigV4) and the data-plane gateway that serves each MicroVM's endpoint.
    On first start it creates the root credentials and the gateway's CA
    under $EMBER_HOME (default ~/.local/share/ember). Stop it with Ctrl-C or
    SIGTERM: running MicroVMs are suspended and resume on the next request
    after a restart. Needs `ember setup` once (kernel, runtime, base images).

    \b
    Example:
      $ ember serve
      Ember is serving (EMBER_HOME /home/me/.local/share/ember)
        API          http://127.0.0.1:9180
        gateway      https://127.0.0.1:9443  (CA: /home/me/.local/share/ember/tls/ca.pem)
      $ eval "$(ember credentials)"     # in another shell
    """
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with errors_to_exit_codes():
        from ember.server import ServeSettings, serve_forever

        settings = ServeSettings(api_host=host, api_port=port, gateway_host=host, gateway_port=gateway_port,
                                 gateway_tls=not no_tls, domain=domain, region=region)
        asyncio.run(_serve(settings, serve_forever))


async def _serve(settings: ServeSettings, serve_forever: Callable[..., Awaitable[None]]) -> None:
    ready = asyncio.Event()
    task = asyncio.create_task(serve_forever(settings, ready), name="ember-serve")
    waiter = asyncio.create_task(ready.wait(), name="ember-serve-ready")
    done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if waiter in done:
        _announce(settings)
    else:
        waiter.cancel()
    await task


def _announce(s: ServeSettings) -> None:
    from ember.sdk.config import CREDENTIALS_FILE, local_ca_bundle
    from ember.server import vmm_confinement

    scheme = "https" if s.gateway_tls else "http"
    ca = local_ca_bundle(s.home) if s.gateway_tls else None
    console = err()
    console.print(f"[bold]Ember[/] is serving (EMBER_HOME {s.home})")
    console.print(f"  API          http://{s.api_host}:{s.api_port}")
    console.print(f"  console      http://{s.api_host}:{s.api_port}/console/")
    console.print(f"  gateway      {scheme}://{s.gateway_host}:{s.gateway_port}" + (f"  (CA: {ca})" if ca else ""))
    console.print(f"  credentials  {s.home / CREDENTIALS_FILE}  →  eval \"$(ember credentials)\"")
    console.print(f"  isolation    {vmm_confinement()}")
    console.print("  stop with Ctrl-C (running MicroVMs are suspended and resume after a restart)")
