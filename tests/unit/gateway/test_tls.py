"""The gateway's CA and server certificate: created once, private keys private, renewed when they must be."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509

from ember.gateway.tls import GatewayCertificates, ca_path, server_names


def names_in(path: Path) -> set[str]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(v) for v in san.get_values_for_type(x509.DNSName)} | {
        str(v) for v in san.get_values_for_type(x509.IPAddress)}


def test_server_names_cover_localhost_and_the_wildcard_domain() -> None:
    assert server_names() == ["localhost", "127.0.0.1"]
    assert server_names("Gw.Example.Test.", ["0.0.0.0", "10.1.2.3", "localhost"]) == [
        "localhost", "127.0.0.1", "*.gw.example.test", "10.1.2.3"]


def test_ensure_creates_ca_and_server_certificate_with_private_keys(tmp_path: Path) -> None:
    certs = GatewayCertificates(tmp_path / "tls", server_names("gw.test"))
    assert certs.ensure() is True
    assert certs.ca_path() == ca_path(tmp_path / "tls") == tmp_path / "tls" / "ca.pem"
    for key in ("ca-key.pem", "server-key.pem"):
        assert stat.S_IMODE((tmp_path / "tls" / key).stat().st_mode) == 0o600
    assert names_in(tmp_path / "tls" / "server.pem") == {"localhost", "127.0.0.1", "*.gw.test"}
    assert certs.ensure() is False  # nothing to do the second time


def test_changed_names_reissue_the_server_certificate_but_keep_the_ca(tmp_path: Path) -> None:
    GatewayCertificates(tmp_path, server_names()).ensure()
    ca_before = (tmp_path / "ca.pem").read_bytes()
    assert GatewayCertificates(tmp_path, server_names("new.test")).ensure() is True
    assert (tmp_path / "ca.pem").read_bytes() == ca_before
    assert "*.new.test" in names_in(tmp_path / "server.pem")


def test_certificate_near_expiry_is_renewed(tmp_path: Path) -> None:
    certs = GatewayCertificates(tmp_path)
    certs.ensure()
    server_before = (tmp_path / "server.pem").read_bytes()
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=380)  # 17 days before the 397-day leaf expires
    assert certs.ensure(now=later) is True
    assert (tmp_path / "server.pem").read_bytes() != server_before
    cert = x509.load_pem_x509_certificate((tmp_path / "server.pem").read_bytes())
    assert cert.not_valid_after_utc > later + dt.timedelta(days=300)


def test_unreadable_ca_is_regenerated_with_a_new_server_certificate(tmp_path: Path) -> None:
    certs = GatewayCertificates(tmp_path)
    certs.ensure()
    (tmp_path / "ca-key.pem").write_text("garbage")
    assert certs.ensure() is True
    ca = x509.load_pem_x509_certificate((tmp_path / "ca.pem").read_bytes())
    x509.load_pem_x509_certificate((tmp_path / "server.pem").read_bytes()).verify_directly_issued_by(ca)


@pytest.mark.parametrize("hostname", ["127.0.0.1", "localhost", "mvm-0123.gw.test"])
async def test_clients_trusting_the_ca_complete_a_handshake(tmp_path: Path, hostname: str) -> None:
    certs = GatewayCertificates(tmp_path, server_names("gw.test"))
    certs.ensure()

    async def hello(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hi")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(hello, "127.0.0.1", 0, ssl=certs.ssl_context())
    try:
        client_ctx = ssl.create_default_context(cafile=str(certs.ca_path()))
        reader, writer = await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1],
                                                       ssl=client_ctx, server_hostname=hostname)
        assert await reader.read() == b"hi"
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()
    finally:
        server.close()
        await server.wait_closed()


async def test_a_name_outside_the_certificate_fails_verification(tmp_path: Path) -> None:
    certs = GatewayCertificates(tmp_path, server_names("gw.test"))
    certs.ensure()
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0, ssl=certs.ssl_context())
    try:
        client_ctx = ssl.create_default_context(cafile=str(certs.ca_path()))
        with pytest.raises(ssl.SSLCertVerificationError):
            await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1], ssl=client_ctx,
                                          server_hostname="a.b.gw.test")
    finally:
        server.close()
        await server.wait_closed()
