"""`ember credentials` and `ember ca`: what a client on this machine needs to reach the local server."""

from __future__ import annotations

import json
import shlex

import click

from ember.cli._common import ExitCode, errors_to_exit_codes
from ember.cli.main import fail


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the credentials and URLs as one JSON object.")
@click.option("--endpoint", envvar="EMBER_ENDPOINT", default="http://127.0.0.1:9180", show_default=True,
              metavar="URL", help="API URL to print (where `ember serve` listens). [env: EMBER_ENDPOINT]")
@click.option("--gateway-port", type=click.IntRange(1, 65535), default=9443, show_default=True,
              envvar="EMBER_GATEWAY_PORT", help="Gateway port to print. [env: EMBER_GATEWAY_PORT]")
@click.option("--region", envvar="EMBER_REGION", default="us-east-1", show_default=True,
              help="Region to print as AWS_REGION. [env: EMBER_REGION]")
def credentials(as_json: bool, endpoint: str, gateway_port: int, region: str) -> None:
    """Print this machine's root credentials as shell exports.

    The root key is created on first use (by `ember serve` or by this
    command) and kept in $EMBER_HOME/credentials.json, mode 0600
    (EMBER_ROOT_ACCESS_KEY_ID and EMBER_ROOT_SECRET_ACCESS_KEY override it). The exports work for the
    `ember` CLI, the Python SDK and boto3 alike; also printed: the API
    endpoint and the gateway's CA bundle.

    \b
    Example:
      $ eval "$(ember credentials)"
      $ ember ls
      $ ember credentials --json | jq -r .accessKeyId
    """
    with errors_to_exit_codes():
        from ember.sdk.config import local_ca_bundle
        from ember.server import root_credentials
        from ember.settings import ember_home

        home = ember_home()
        creds = root_credentials(home)
        ca = local_ca_bundle(home)
        host = endpoint.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0] or "127.0.0.1"
        gateway = f"https://{host}:{gateway_port}"
        if as_json:
            click.echo(json.dumps({"accountId": creds.account_id, "accessKeyId": creds.access_key_id,
                                   "secretAccessKey": creds.secret_access_key, "region": region,
                                   "endpoint": endpoint, "gateway": gateway,
                                   "caBundle": str(ca) if ca else None}, indent=2))
            return
        exports = {"AWS_ACCESS_KEY_ID": creds.access_key_id, "AWS_SECRET_ACCESS_KEY": creds.secret_access_key,
                   "AWS_REGION": region, "EMBER_ENDPOINT": endpoint}
        if ca:
            exports["EMBER_CA_BUNDLE"] = str(ca)
        for name, value in exports.items():
            click.echo(f"export {name}={shlex.quote(value)}")
        click.echo(f"# account {creds.account_id}; API {endpoint}; gateway {gateway}")


@click.command()
def ca() -> None:
    """Print the path of the gateway's CA bundle (PEM).

    Trust it for MicroVM endpoints.

    `ember serve` creates the CA under $EMBER_HOME on first start and signs
    the gateway's certificate with it. The SDK and CLI find it by
    themselves on this machine; other clients need it (curl --cacert,
    requests' verify=, SSL_CERT_FILE). Exits 3 when no CA exists yet.

    \b
    Example:
      $ ember ca
      /home/me/.local/share/ember/tls/ca.pem
      $ curl --cacert "$(ember ca)" -H "X-aws-proxy-auth: $(ember token $ID)" \\
          "https://127.0.0.1:9443/microvms/$ID/state"
    """
    from ember.sdk.config import local_ca_bundle

    path = local_ca_bundle()
    if path is None or not path.is_file():
        fail("no gateway CA yet: start `ember serve` once (it creates the CA under $EMBER_HOME)", ExitCode.NOT_FOUND)
    click.echo(str(path))
