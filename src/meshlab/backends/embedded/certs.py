"""The mesh's certificate authority and each workload's certificate.

istiod (as Citadel) signs a certificate per workload whose only identity is a SPIFFE URI SAN
(`spiffe://cluster.local/ns/NS/sa/SA`, pkg/spiffe/spiffe.go); sidecars present it and check
the peer's against the mesh CA. Here they are made with `cryptography` (EC P-256, as Istio's
default ECC option). This module only makes them; castore.py keeps them between runs as a
cluster keeps istiod's root, and `write_mesh_certs` makes a whole fresh set in one folder
(where no store can be used, and for tests).
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from meshlab.records import dataclass

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

# istiod's defaults (security/pkg/cmd/constants.go): a self-signed root for 10 years
# (DefaultSelfSignedCACertTTL), a workload certificate for 24 h (DefaultWorkloadCertTTL)
ROOT_TTL = datetime.timedelta(days=3650)
WORKLOAD_TTL = datetime.timedelta(hours=24)
_BACKDATED = datetime.timedelta(minutes=5)  # a clock a little behind still accepts it


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


@dataclass(frozen=True)
class Validity:
    """When a certificate made here starts and stops being valid (UTC)."""

    not_before: datetime.datetime
    not_after: datetime.datetime


def make_root(cert: Path, key: Path, now: datetime.datetime) -> Validity:
    """A new self-signed mesh root (its key 0600), valid ROOT_TTL from `now`.

    `cryptography` is imported here, not with the module (~0.1 s of CPU): only a run that
    has to sign pays for it (the CA worker, or the store's first fill)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    validity = Validity(now - _BACKDATED, now + ROOT_TTL)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    name = _root_name()
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity.not_before)
        .not_valid_after(validity.not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    write_private(key, _pkcs8(ca_key))
    cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    return validity


def issue(
    root_cert: Path,
    root_key: Path,
    spiffe: str,
    cert: Path,
    key: Path,
    now: datetime.datetime,
) -> Validity:
    """A workload certificate for `spiffe` signed by the root at `root_cert`/`root_key`,
    written with the root after it (the chain a sidecar presents) and its key 0600. Valid
    WORKLOAD_TTL from `now`, never past the root."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    root_pem = root_cert.read_bytes()
    root = x509.load_pem_x509_certificate(root_pem)
    signer = serialization.load_pem_private_key(root_key.read_bytes(), password=None)
    if not isinstance(signer, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{root_key} is not the mesh CA's EC key")
    validity = Validity(now - _BACKDATED, min(now + WORKLOAD_TTL, root.not_valid_after_utc))
    workload_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))  # Istio's workload certs carry only the SAN
        .issuer_name(root.subject)
        .public_key(workload_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity.not_before)
        .not_valid_after(validity.not_after)
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
        .sign(signer, hashes.SHA256())
    )
    write_private(key, _pkcs8(workload_key))
    cert.write_bytes(leaf.public_bytes(serialization.Encoding.PEM) + root_pem)
    return validity


def write_mesh_certs(
    directory: Path, spiffe_ids: Iterable[str], now: datetime.datetime | None = None
) -> MeshCerts:
    """A new CA and one certificate per SPIFFE id, all written under `directory` and used by
    one run only: where no store can be used (castore.py), and for tests."""
    directory.mkdir(parents=True, exist_ok=True)
    now = now or datetime.datetime.now(datetime.UTC)
    ca, ca_key = directory / "root-cert.pem", directory / "root-key.pem"
    make_root(ca, ca_key, now)
    identities: dict[str, Identity] = {}
    for index, spiffe in enumerate(sorted(set(spiffe_ids))):
        cert, key = directory / f"workload-{index}.pem", directory / f"workload-{index}.key"
        issue(ca, ca_key, spiffe, cert, key, now)
        identities[spiffe] = Identity(spiffe, cert, key)
    return MeshCerts(ca, identities)


def write_private(path: Path, data: bytes) -> None:
    """Write a key readable by its owner only (0600 from its creation, never wider)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _root_name() -> x509.Name:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cluster.local")])


def _pkcs8(key: ec.EllipticCurvePrivateKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
