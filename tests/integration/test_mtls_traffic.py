"""Real TLS between the sidecars' Envoys: under STRICT a meshed client is served through
mTLS (Envoy's own TLS stats say so) and a plaintext client without a sidecar is refused."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from meshlab.backends.base import LabToDeploy
from meshlab.backends.embedded.backend import EmbeddedBackend, EmbeddedMesh
from meshlab.backends.embedded.certs import write_mesh_certs
from meshlab.backends.embedded.envoy.binary import find_envoy
from meshlab.backends.embedded.envoy.bootstrap import placeholder_addresses, render_mesh
from meshlab.backends.embedded.envoy.mtls import identities, mesh_tls
from meshlab.checks.reachability import REFUSED, verdict_of
from meshlab.load.manifests import load_manifests
from meshlab.mesh.plan import build_plan
from meshlab.mesh.proxies import build_proxies
from meshlab.mesh.request import Origin, ProbeRequest

pytestmark = pytest.mark.envoy

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "labs" / "2-traffic" / "fleetman.yaml"
STRICT = ROOT / "tests" / "data" / "mtls" / "strict.yaml"
URL = "http://fleetman-staff-service:8080/driver/City%20Truck"


@pytest.fixture(scope="module")
def backend(backend: EmbeddedBackend) -> EmbeddedBackend:
    """The shared backend, keeping the listeners' TLS stats (Istio's default list drops
    them; a pod's proxyStatsMatcher would add them back, as here)."""
    return EmbeddedBackend(replace(backend.options, stats_prefixes=("listener.",)))


def deploy(backend: EmbeddedBackend, *files: Path) -> Iterator[EmbeddedMesh]:
    resources = load_manifests([APP, *files], "default")
    lab = LabToDeploy("test", "default", resources, build_plan(resources, "default"))
    with backend.deploy(lab) as deployed:
        yield deployed


@pytest.fixture(scope="module")
def strict(backend: EmbeddedBackend) -> Iterator[EmbeddedMesh]:
    yield from deploy(backend, STRICT)


def stats(mesh: EmbeddedMesh) -> dict[str, int]:
    with urllib.request.urlopen(f"{mesh.envoy.admin_url}/stats?format=json") as answer:
        data = json.load(answer)
    return {s["name"]: s["value"] for s in data["stats"] if "value" in s}


def inbound_ssl(mesh: EmbeddedMesh, stat: str) -> int:
    """A server-side TLS stat (`handshake`, `connection_error`) summed over the staff pods'
    inbound internal listeners (Envoy names them `envoy_internal_<listener>`)."""
    return sum(
        v
        for k, v in stats(mesh).items()
        if k.startswith("listener.envoy_internal_inbound~staff-service")
        and k.endswith(f".ssl.{stat}")
    )


def test_strict_serves_a_meshed_client_through_mutual_tls(strict: EmbeddedMesh) -> None:
    before = inbound_ssl(strict, "handshake")
    with strict.session() as session:
        outcomes = session.send(ProbeRequest(URL), 10)
    assert all(o.status == 200 for o in outcomes), [o.error or o.status for o in outcomes]
    assert (
        inbound_ssl(strict, "handshake") > before
    )  # the client's sidecar reached the pods over TLS
    config = json.loads(urllib.request.urlopen(f"{strict.envoy.admin_url}/config_dump").read())
    text = json.dumps(config)
    assert "spiffe://cluster.local/ns/default/sa/default" in text


def test_strict_refuses_a_plaintext_client_without_a_sidecar(strict: EmbeddedMesh) -> None:
    before = inbound_ssl(strict, "connection_error")
    with strict.session() as session:
        outcomes = session.send(ProbeRequest(URL, origin=Origin("no-sidecar")), 5)
    assert all(o.status is None for o in outcomes), [o.status for o in outcomes]
    assert all(o.error for o in outcomes)
    # the inbound side refused the plaintext bytes as a failed TLS handshake
    assert inbound_ssl(strict, "connection_error") >= before + 5


def test_the_chain_works_under_strict(strict: EmbeddedMesh) -> None:
    """webapp -> api-gateway -> staff-service: every hop enters its callee's sidecar via mTLS."""
    url = "http://fleetman-webapp:80/api/vehicles/driver/City%20Truck"
    with strict.session() as session:
        (outcome,) = session.send(ProbeRequest(url), 1)
    assert outcome.status == 200, outcome.error
    assert outcome.hops
    assert all(h.status == 200 for h in outcome.hops)


def test_a_sidecar_sending_plaintext_to_a_strict_pod_gets_a_503(backend: EmbeddedBackend) -> None:
    """DestinationRule `tls.mode: DISABLE` under STRICT: the client's sidecar connects in
    plaintext, the pod's inbound side drops it, the sidecar answers 503 (upstream failure)."""
    for mesh in deploy(backend, STRICT, ROOT / "tests" / "data" / "mtls" / "plaintext-rule.yaml"):
        with mesh.session() as session:
            outcomes = session.send(ProbeRequest(URL), 3)
        assert {o.status for o in outcomes} == {503}
        assert {verdict_of(o) for o in outcomes} == {REFUSED}, [o.response_flags for o in outcomes]


EVERY_MODE = ROOT / "tests" / "data" / "mtls" / "every-mode.yaml"


def test_envoy_validates_every_mtls_shape(tmp_path: Path) -> None:
    """STRICT, PERMISSIVE (port-level) and DISABLE inbound chains, auto mTLS and
    ISTIO_MUTUAL clusters in one bootstrap: `envoy --mode validate` accepts it."""
    loaded = load_manifests([APP, EVERY_MODE], "default")
    resources = [r for r in loaded if r.simulated]
    proxies = build_proxies(resources, build_plan(resources, "default"))
    certs = write_mesh_certs(tmp_path / "certs", identities(proxies)[1])
    tls = mesh_tls(proxies, resources, certs)
    config = render_mesh(proxies, placeholder_addresses(proxies.client.plan), tls=tls)
    chains = {
        lst["name"].split("~")[1].rsplit("-", 2)[0]: len(lst["filter_chains"])
        for lst in config["static_resources"]["listeners"]
        if lst["name"].startswith("inbound~")
    }
    assert chains["staff-service"] == 2  # PERMISSIVE on 8080
    assert chains["vehicle-telemetry"] == 1  # DISABLE
    assert chains["api-gateway"] == 1  # STRICT
    (tmp_path / "envoy.json").write_text(json.dumps(config))
    binary = find_envoy(None)
    done = subprocess.run(
        [str(binary.path), "--mode", "validate", "-c", str(tmp_path / "envoy.json"), "-l", "error"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
