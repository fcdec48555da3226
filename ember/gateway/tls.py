"""The gateway's TLS material: a private CA Ember generates once, and a server certificate it signs.

Files under the given directory: ``ca.pem`` (give it to clients: ``ember ca`` prints its path),
``ca-key.pem`` (mode 0600), ``server.pem`` and ``server-key.pem`` (mode 0600). The server certificate
is regenerated when the configured names change, when the CA changed, or within
``RENEW_BEFORE_DAYS`` of expiry; the CA is regenerated only when missing, unreadable or near expiry
(clients must then fetch the new ``ca.pem``). Trusting keys found on disk is fine: the directory is
Ember's own (``$EMBER_HOME``), created 0700.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import ssl
from collections.abc import Iterable, Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

log = logging.getLogger("ember.gateway")

CA_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
SERVER_FILE = "server.pem"
SERVER_KEY_FILE = "server-key.pem"
CA_VALID_DAYS = 3650
SERVER_VALID_DAYS = 397
"""Browsers refuse leaf certificates valid for more than 398 days."""
RENEW_BEFORE_DAYS = 30
CLOCK_SKEW = dt.timedelta(hours=1)
"""Certificates start an hour in the past so a client whose clock lags a little still accepts them."""
DEFAULT_NAMES = ("localhost", "127.0.0.1")
ALPN_PROTOCOLS = ["http/1.1"]
"""The gateway speaks HTTP/1.1 only; clients offering h2 fall back."""


def ca_path(directory: Path) -> Path:
    """Where the CA bundle for the gateway whose TLS material lives in ``directory`` is (``ember ca``)."""
    return Path(directory) / CA_FILE


def server_names(domain: str | None = None, extra: Iterable[str] = ()) -> list[str]:
    """The names the server certificate covers: localhost, 127.0.0.1, ``*.{domain}`` and any ``extra``."""
    names = list(DEFAULT_NAMES)
    if domain:
        names.append(f"*.{domain.strip('.').lower()}")
    for name in extra:
        if name and name not in ("0.0.0.0", "::") and name.lower() not in names:
            names.append(name.lower())
    return names


class GatewayCertificates:
    """The CA and server certificate under ``directory``, created or renewed by :meth:`ensure`."""

    def __init__(self, directory: Path, names: Sequence[str] = DEFAULT_NAMES) -> None:
        self.directory = Path(directory)
        self.names = list(names)

    def ca_path(self) -> Path:
        """The CA bundle clients should trust (exists after :meth:`ensure`)."""
        return ca_path(self.directory)

    def ensure(self, now: dt.datetime | None = None) -> bool:
        """Create or renew what is missing, stale or for other names; True when anything was written."""
        now = now or dt.datetime.now(dt.UTC)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        ca = self._load_ca(now)
        wrote = False
        if ca is None:
            ca = self._write_ca(now)
            wrote = True
            log.info("generated the gateway CA", extra={"action": "tls_ca_generated", "path": str(self.ca_path())})
        if wrote or not self._server_is_current(ca[0], now):
            self._write_server(ca, now)
            wrote = True
            log.info("issued the gateway server certificate",
                     extra={"action": "tls_server_issued", "names": ",".join(self.names)})
        return wrote

    def ssl_context(self) -> ssl.SSLContext:
        """A server-side context with the current certificate (call :meth:`ensure` first)."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.directory / SERVER_FILE, self.directory / SERVER_KEY_FILE)
        ctx.set_alpn_protocols(ALPN_PROTOCOLS)
        return ctx

    # -- internals -------------------------------------------------------------------------------------------
    def _load_ca(self, now: dt.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
        try:
            cert = x509.load_pem_x509_certificate((self.directory / CA_FILE).read_bytes())
            key = serialization.load_pem_private_key((self.directory / CA_KEY_FILE).read_bytes(), password=None)
        except (OSError, ValueError):
            return None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or cert.public_key() != key.public_key():
            return None
        if cert.not_valid_after_utc - now < dt.timedelta(days=RENEW_BEFORE_DAYS):
            return None
        return cert, key

    def _server_is_current(self, ca_cert: x509.Certificate, now: dt.datetime) -> bool:
        try:
            cert = x509.load_pem_x509_certificate((self.directory / SERVER_FILE).read_bytes())
            key = serialization.load_pem_private_key((self.directory / SERVER_KEY_FILE).read_bytes(), password=None)
            cert.verify_directly_issued_by(ca_cert)
        except (OSError, ValueError, TypeError, x509.InvalidSignature):
            return False
        if cert.public_key() != key.public_key():  # type: ignore[union-attr]
            return False
        if cert.not_valid_after_utc - now < dt.timedelta(days=RENEW_BEFORE_DAYS):
            return False
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            return False
        have = {str(v).lower() for v in san.get_values_for_type(x509.DNSName)}
        have |= {str(v) for v in san.get_values_for_type(x509.IPAddress)}
        return have == {name.lower() for name in self.names}

    def _write_ca(self, now: dt.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Ember"),
                          x509.NameAttribute(NameOID.COMMON_NAME, "Ember gateway CA")])
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (x509.CertificateBuilder()
                .subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - CLOCK_SKEW).not_valid_after(now + dt.timedelta(days=CA_VALID_DAYS))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                             content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False,
                                             encipher_only=False, decipher_only=False), critical=True)
                .add_extension(ski, critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
                .sign(key, hashes.SHA256()))
        # Key first: a CA certificate whose key never reached the disk would be useless.
        _write_private(self.directory / CA_KEY_FILE, _key_pem(key))
        _write_atomic(self.directory / CA_FILE, cert.public_bytes(serialization.Encoding.PEM), 0o644)
        return cert, key

    def _write_server(self, ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey], now: dt.datetime) -> None:
        ca_cert, ca_key = ca
        key = ec.generate_private_key(ec.SECP256R1())
        alt_names: list[x509.GeneralName] = []
        for name in self.names:
            try:
                alt_names.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                alt_names.append(x509.DNSName(name))
        ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.names[0])]))
                .issuer_name(ca_cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - CLOCK_SKEW).not_valid_after(now + dt.timedelta(days=SERVER_VALID_DAYS))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False,
                                             content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False,
                                             encipher_only=False, decipher_only=False), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
                .sign(ca_key, hashes.SHA256()))
        _write_private(self.directory / SERVER_KEY_FILE, _key_pem(key))
        _write_atomic(self.directory / SERVER_FILE, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write_private(path: Path, data: bytes) -> None:
    _write_atomic(path, data, 0o600)


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write to a temporary name created with ``mode`` (never wider, even for a moment), then rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
