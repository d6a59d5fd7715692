"""The mesh's certificate authority and each workload's certificate, made at run time.

istiod (as Citadel) signs a certificate per workload whose only identity is a SPIFFE URI SAN
(`spiffe://cluster.local/ns/NS/sa/SA`, pkg/spiffe/spiffe.go); sidecars present it and check
the peer's against the mesh CA. Here a fresh CA and fresh keys are made for each run with
`cryptography` (EC P-256, as Istio's default ECC option) and written into the run's temporary
directory: no key is ever committed or reused.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterable
from pathlib import Path

from meshlab.records import dataclass

_VALID = datetime.timedelta(days=1)  # a run lasts minutes; Istio's default is 24 h too


@dataclass(frozen=True)
class Identity:
    """Where one workload identity's certificate chain and key are on disk."""

    spiffe: str
    certificate: Path
    key: Path


@dataclass(frozen=True)
class MeshCerts:
    """The run's mesh CA and the certificate of each workload identity, on disk: what the sidecars'
    mutual TLS presents and trusts."""

    ca: Path  # the root every sidecar trusts
    identities: dict[str, Identity]  # SPIFFE id -> its files

    def of(self, spiffe: str) -> Identity:
        return self.identities[spiffe]


def write_mesh_certs(directory: Path, spiffe_ids: Iterable[str]) -> MeshCerts:
    """A new CA and one certificate per SPIFFE id, written under `directory` (keys 0600).
    `cryptography` is imported here, not with the module (~0.1 s): the backend makes the CA
    in a thread while the stand-ins start, so a run does not wait for it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cluster.local")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALID)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path = directory / "root-cert.pem"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    identities: dict[str, Identity] = {}
    for index, spiffe in enumerate(sorted(set(spiffe_ids))):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))  # Istio's workload certs carry only the SAN
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + _VALID)
            .add_extension(
                x509.SubjectAlternativeName([x509.UniformResourceIdentifier(spiffe)]),
                critical=True,  # an empty subject makes the SAN critical (RFC 5280 4.2.1.6)
            )
            .add_extension(
                x509.ExtendedKeyUsage(
                    [
                        x509.oid.ExtendedKeyUsageOID.SERVER_AUTH,
                        x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH,
                    ]
                ),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        cert_path = directory / f"workload-{index}.pem"
        key_path = directory / f"workload-{index}.key"
        cert_path.write_bytes(
            cert.public_bytes(serialization.Encoding.PEM)
            + ca_cert.public_bytes(serialization.Encoding.PEM)
        )
        _write_private(
            key_path,
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
        identities[spiffe] = Identity(spiffe, cert_path, key_path)
    return MeshCerts(ca_path, identities)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
