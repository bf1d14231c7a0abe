"""A redis-server with TLS and a password on this machine's routable address, as pods would reach it."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import subprocess
from pathlib import Path

import redis

from tasks.processes import free_port, redis_server_binary, stop_process_group, wait_for


def routable_ipv4() -> str:
    """This machine's address on its default route (a UDP connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(("192.0.2.1", 9))
        address = sock.getsockname()[0]
    if ipaddress.ip_address(address).is_loopback:
        raise RuntimeError(f"this machine has no routable IPv4 address (got {address})")
    return address


def write_certificates(directory: Path, address: str) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for `address`: (ca.pem, cert.pem, key.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "audiobook test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, address)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(address))]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    paths[2].chmod(0o600)
    return paths


class TlsRedisServer:
    """redis-server speaking only TLS, with `requirepass`, on the routable address and a free port."""

    def __init__(self, directory: Path, password: str) -> None:
        self.directory = directory
        self.password = password
        self.host = routable_ipv4()
        self.port = free_port()
        self.ca, self.cert, self.key = write_certificates(directory / "tls", self.host)
        self.proc: subprocess.Popen | None = None

    def url(self, password: str | None = None, db: int = 0) -> str:
        return (f"rediss://:{password or self.password}@{self.host}:{self.port}/{db}"
                f"?ssl_cert_reqs=required&ssl_ca_certs={self.ca}")

    def start(self) -> TlsRedisServer:
        self.proc = subprocess.Popen(
            [redis_server_binary(), "--port", "0", "--tls-port", str(self.port), "--bind", self.host, "--tls-cert-file",
             str(self.cert), "--tls-key-file", str(self.key), "--tls-ca-cert-file", str(self.ca),
             "--tls-auth-clients", "no", "--requirepass", self.password, "--save", "", "--appendonly", "no",
             "--dir", str(self.directory)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        client = redis.Redis.from_url(self.url())

        def answers() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError("redis-server with TLS exited (built without TLS support?)")
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        wait_for(answers, 10, what=f"TLS redis-server on {self.host}:{self.port}")
        client.close()
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop_process_group(self.proc, grace=5)
            self.proc = None
