"""Self-signed certificates for loopback TLS servers, made by `openssl req -x509` in the test.

The `cryptography` package is not installed here, so the openssl command line makes them; a test
that needs one is skipped, with the reason, where no openssl is on PATH.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Certificate:
    cert: Path  # PEM; self-signed, so also the CA bundle a client trusts it with
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context


def self_signed(directory: Path, *names: str, stem: str = "argo-server") -> Certificate:
    """A P-256 certificate for `names` (IP addresses or DNS names), valid for a day.

    Like the one a stock argo-server generates (util/tls/tls.go), it is its own issuer; unlike
    it, it names the host the test connects to, unless the test leaves that out.
    """
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl on PATH (and no `cryptography`) to make a test certificate")
    cert, key = directory / f"{stem}.crt", directory / f"{stem}.key"
    alt = ",".join(f"IP:{n}" if n[:1].isdigit() or ":" in n else f"DNS:{n}" for n in names)
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
            "-subj",
            f"/O=facteur tests/CN={stem}",
            "-addext",
            f"subjectAltName={alt}",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,digitalSignature,keyCertSign",
            "-addext",
            "extendedKeyUsage=serverAuth",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return Certificate(cert=cert, key=key)
