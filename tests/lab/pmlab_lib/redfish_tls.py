"""The lab's own certificate authority for the Redfish faces of its BMCs.

Each lab gets a fresh CA (``LAB_DIR/redfish-ca/ca.pem``, EC P-256, valid for a
few days) and each BMC a server certificate signed by it, naming the BMC's
address as an IP subject alternative name (plus ``localhost`` and 127.0.0.1 in
loopback mode). Made with the ``openssl`` command line tool (argv lists, no
shell). Clients verify with ``ca.pem``; without it verification fails, as it
does against a real BMC's self-signed certificate.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import List, Tuple

DAYS = "7"


def _openssl(argv: List[str]) -> None:
    result = subprocess.run(["openssl"] + argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {argv[0]} failed: {result.stderr.strip()}")


def make_ca(folder: Path, name: str) -> Path:
    """Create the lab CA in ``folder``; returns the CA certificate's path."""
    folder.mkdir(parents=True, exist_ok=True)
    key, cert = folder / "ca.key", folder / "ca.pem"
    _openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(key)])
    key.chmod(0o600)
    _openssl(
        [
            "req", "-x509", "-new", "-key", str(key), "-sha256", "-days", DAYS, "-subj", f"/O=pmlab/CN=pmlab CA {name}",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-out", str(cert),
        ]
    )
    return cert


def make_server_cert(ca_folder: Path, out_folder: Path, common_name: str, addresses: List[str]) -> Tuple[Path, Path]:
    """A server certificate for one BMC, signed by the lab CA; returns (cert, key)."""
    out_folder.mkdir(parents=True, exist_ok=True)
    key, csr, cert = out_folder / "redfish.key", out_folder / "redfish.csr", out_folder / "redfish.pem"
    _openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(key)])
    key.chmod(0o600)
    _openssl(["req", "-new", "-key", str(key), "-subj", f"/O=pmlab/CN={common_name}", "-out", str(csr)])
    names = [f"IP:{address}" for address in addresses] + ["DNS:" + common_name]
    if "127.0.0.1" in addresses:
        names.append("DNS:localhost")
    extensions = out_folder / "redfish.ext"
    extensions.write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
        f"subjectAltName={','.join(names)}\n"
    )
    _openssl(
        [
            "x509", "-req", "-in", str(csr), "-CA", str(ca_folder / "ca.pem"), "-CAkey", str(ca_folder / "ca.key"),
            "-CAcreateserial", "-sha256", "-days", DAYS, "-extfile", str(extensions), "-out", str(cert),
        ]
    )
    csr.unlink()
    return cert, key
