"""Throwaway TLS certificates for tests: a private CA and a server certificate (trustme).

    certs = make_test_certificates()          # ~10 ms (ECDSA P-256 keys)
    ctx = certs.server_ssl_context()          # server side, TLS 1.2+
    # clients: sslmode=verify-full sslrootcert=certs.ca_file
    certs.cleanup()                           # or: with make_test_certificates() as certs: ...

Files written: ``ca.pem`` (the CA certificate clients trust), ``server.pem`` (the server
certificate followed by its chain) and ``server.key`` (the server's private key, PKCS#8,
mode 0600 -- libpq refuses world-readable client keys and PostgreSQL server keys, so keep
the habit).
"""

from __future__ import annotations

import os
import shutil
import ssl
import tempfile
from dataclasses import dataclass, field

__all__ = ["TestCertificates", "make_test_certificates"]

DEFAULT_HOSTNAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class TestCertificates:
    """Paths and bytes of certificates made by :func:`make_test_certificates`."""

    __test__ = False  # not a pytest test class despite the name

    directory: str
    ca_file: str
    cert_file: str
    key_file: str
    cert_der: bytes = field(repr=False)
    hostnames: tuple[str, ...] = DEFAULT_HOSTNAMES
    owns_directory: bool = True

    @property
    def tls_endpoint_hash(self) -> bytes:
        """The tls-server-end-point channel-binding data of the server certificate."""
        from fakepm.protocol.auth import tls_server_end_point

        return tls_server_end_point(self.cert_der)

    def server_ssl_context(self) -> ssl.SSLContext:
        """A new server-side SSLContext (TLS 1.2 or later) with this certificate and key."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx

    def client_ssl_context(self) -> ssl.SSLContext:
        """A client-side SSLContext that trusts the CA (hostname checking on)."""
        ctx = ssl.create_default_context(cafile=self.ca_file)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        return ctx

    def cleanup(self) -> None:
        """Delete the directory (when it was created here) or just the three files."""
        if self.owns_directory:
            shutil.rmtree(self.directory, ignore_errors=True)
            return
        for path in (self.ca_file, self.cert_file, self.key_file):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def __enter__(self) -> "TestCertificates":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cleanup()


def make_test_certificates(
    hostnames: tuple[str, ...] | list[str] = DEFAULT_HOSTNAMES, directory: str | None = None
) -> TestCertificates:
    """Make a throwaway CA and a server certificate valid for ``hostnames``.

    ``hostnames`` may hold DNS names and IP addresses (they become subjectAltNames).
    Writes ``ca.pem``, ``server.pem`` and ``server.key`` into ``directory`` (created if
    missing; a new ``tempfile.mkdtemp()`` when None). The caller removes them with
    :meth:`TestCertificates.cleanup`. Keys are ECDSA P-256 (trustme's default), signed
    with SHA-256: generating both takes about 10 ms (RSA-2048 would take ~200 ms).
    """
    import trustme

    hostnames = tuple(hostnames)
    if not hostnames:
        raise ValueError("make_test_certificates needs at least one hostname")
    owns = directory is None
    if directory is None:
        directory = tempfile.mkdtemp(prefix="fakepm-certs-")
    else:
        os.makedirs(directory, exist_ok=True)
    try:
        ca = trustme.CA(organization_name="fakepm test CA")
        leaf = ca.issue_cert(*hostnames, organization_name="fakepm")
        ca_file = os.path.join(directory, "ca.pem")
        cert_file = os.path.join(directory, "server.pem")
        key_file = os.path.join(directory, "server.key")
        ca.cert_pem.write_to_path(ca_file)
        with open(cert_file, "wb") as f:
            for blob in leaf.cert_chain_pems:
                f.write(blob.bytes())
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(leaf.private_key_pem.bytes())
        os.chmod(key_file, 0o600)
        cert_der = ssl.PEM_cert_to_DER_cert(leaf.cert_chain_pems[0].bytes().decode("ascii"))
    except BaseException:
        if owns:
            shutil.rmtree(directory, ignore_errors=True)
        raise
    return TestCertificates(
        directory=directory,
        ca_file=ca_file,
        cert_file=cert_file,
        key_file=key_file,
        cert_der=cert_der,
        hostnames=hostnames,
        owns_directory=owns,
    )
