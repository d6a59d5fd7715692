"""What mutual TLS costs on the embedded backend: lab 7 deployed with the mesh's mTLS (a
fresh CA, a certificate per identity, TLS between the sidecars) and with plaintext
everywhere (the same config without transport sockets). Seconds until ready, requests/s
of a meshed call (webapp -> api-gateway, one mTLS hop), and the certificates' own cost.
Medians, plaintext and mTLS deployments alternated so load on the machine hits both."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import meshlab.backends.embedded.backend as embedded
from meshlab.backends.embedded.certs import write_mesh_certs
from meshlab.mesh.request import Origin, ProbeRequest
from meshlab.pipeline import prepare

ROOT = Path(__file__).resolve().parent.parent
LAB7 = ROOT / "labs" / "7-mtls"
CALL = ProbeRequest("http://fleetman-api-gateway:8080/", origin=Origin("workload", "webapp"))


def _deploy(tls: bool, requests: int) -> tuple[float, float]:
    real = embedded.mesh_tls
    if not tls:
        embedded.mesh_tls = lambda *args: None  # type: ignore[assignment]
    try:
        lab = prepare(LAB7).to_deploy()
        started = time.perf_counter()
        with embedded.EmbeddedBackend().deploy(lab) as mesh:
            ready = time.perf_counter() - started
            with mesh.session() as session:
                session.send(CALL, 10)
                started = time.perf_counter()
                session.send(CALL, requests)
                rate = requests / (time.perf_counter() - started)
    finally:
        embedded.mesh_tls = real
    return ready, rate


def mtls_cost(runs: int, requests: int = 500) -> dict[str, float]:
    seen: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    for _ in range(runs):
        for tls in (False, True):
            seen[tls].append(_deploy(tls, requests))
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        write_mesh_certs(
            Path(tmp), [f"spiffe://cluster.local/ns/default/sa/s{i}" for i in range(8)]
        )
        certs_ms = 1000 * (time.perf_counter() - started)
    out = {"runs": float(runs), "certs_ms_for_8_identities": certs_ms}
    for tls, name in ((False, "plaintext"), (True, "mtls")):
        out[f"{name}_seconds_ready"] = statistics.median(r for r, _ in seen[tls])
        out[f"{name}_requests_per_second"] = statistics.median(q for _, q in seen[tls])
    return out


def describe(cost: dict[str, float]) -> str:
    extra = cost["mtls_seconds_ready"] - cost["plaintext_seconds_ready"]
    return (
        f"mTLS start-up: lab 7 ready in {cost['mtls_seconds_ready']:.2f} s with mTLS, "
        f"{cost['plaintext_seconds_ready']:.2f} s plaintext ({1000 * extra:+.0f} ms; "
        f"certificates for 8 identities {cost['certs_ms_for_8_identities']:.0f} ms); "
        f"a meshed call {cost['mtls_requests_per_second']:.0f} vs "
        f"{cost['plaintext_requests_per_second']:.0f} requests/s (median of {cost['runs']:.0f})"
    )
