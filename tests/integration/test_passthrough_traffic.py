"""ALLOW_ANY's PassthroughCluster on a real Envoy: a Service a Sidecar hides from the
caller is still reached at its ClusterIP (kube-proxy picks a pod; none of the caller's
routing applies), whether the caller's sidecar listens on the port (the catch-all's route)
or not (the virtual outbound listener), from the test client and from a stand-in's call;
`expect: configured` predicts it; REGISTRY_ONLY still blocks (mesh/passthrough.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lab_runs import check_results
from meshlab.backends.embedded.backend import EmbeddedBackend
from meshlab.checks import CheckResult
from meshlab.errors import InputError
from meshlab.pipeline import prepare

pytestmark = pytest.mark.envoy

ROOT = Path(__file__).resolve().parents[2]
LAB2 = ROOT / "labs" / "2-traffic"
LAB6 = ROOT / "labs" / "6-circuit-breaking"
STAFF = "http://fleetman-staff-service:8080/driver/City%20Truck"
DRIVER = "http://fleetman-api-gateway:8080/vehicles/driver/City%20Truck"


def sidecar(hosts: str, mode: str = "") -> str:
    policy = f"  outboundTrafficPolicy: {{mode: {mode}}}\n" if mode else ""
    return (
        "apiVersion: networking.istio.io/v1\nkind: Sidecar\n"
        f"metadata: {{name: default, namespace: default}}\nspec:\n"
        f"  egress:\n  - hosts: [{hosts}]\n{policy}"
    )


def run(
    tmp_path: Path, backend: EmbeddedBackend, files: list[Path], side: str, checks: str
) -> dict[str, CheckResult]:
    lab = tmp_path / "lab"
    lab.mkdir(parents=True)
    for f in files:
        shutil.copy(f, lab / f.name)
    (lab / "sidecar.yaml").write_text(side)
    names = ", ".join([*(f.name for f in files), "sidecar.yaml"])
    (lab / "lab.yaml").write_text(f"title: passthrough\nmanifests: [{names}]\nchecks:\n{checks}")
    return check_results(lab, backend)


def split(name: str, url: str, expect: str = "") -> str:
    return f"  - name: {name}\n    kind: split\n    request: {{url: '{url}'}}\n{expect}"


def test_a_hidden_service_without_a_listener_is_reached_at_its_cluster_ip(
    tmp_path: Path, backend: EmbeddedBackend
) -> None:
    # lab 2's VirtualService says 90/10; hidden from the client, kube-proxy says 50/50
    files = [LAB2 / "fleetman.yaml", LAB2 / "istio-rules.yaml"]
    results = run(tmp_path, backend, files, sidecar('"istio-system/*"'), split("s", STAFF))
    assert results["s"].expected == pytest.approx({"safe": 0.5, "risky": 0.5})
    assert results["s"].outcome == "pass", results["s"].message


def test_a_hidden_service_behind_a_listener_and_in_the_chain(
    tmp_path: Path, backend: EmbeddedBackend
) -> None:
    # the client imports the api-gateway only (a listener on 8080 for it); every sidecar of
    # the namespace hides the staff service, the api-gateway's too
    side = sidecar('"./fleetman-api-gateway.default.svc.cluster.local"')
    checks = split("direct", STAFF) + split("chain", DRIVER)
    results = run(tmp_path, backend, [LAB6 / "fleetman.yaml"], side, checks)
    assert results["direct"].expected == pytest.approx({"safe": 0.5, "HTTP 500": 0.5})
    assert results["chain"].expected == pytest.approx({"safe": 0.5, "HTTP 500": 0.5})
    for result in results.values():
        assert result.outcome == "pass", result.message
        assert "HTTP 503" not in result.observed


def test_registry_only_still_blocks(tmp_path: Path, backend: EmbeddedBackend) -> None:
    side = sidecar('"./fleetman-api-gateway.default.svc.cluster.local"', "REGISTRY_ONLY")
    expect = "    expect: {HTTP 502: 100}\n"
    results = run(tmp_path, backend, [LAB6 / "fleetman.yaml"], side, split("d", STAFF, expect))
    assert results["d"].outcome == "pass", results["d"].message


def test_a_request_cannot_set_meshlabs_own_headers(tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    lab.mkdir()
    shutil.copy(LAB2 / "fleetman.yaml", lab / "fleetman.yaml")
    (lab / "lab.yaml").write_text(
        "title: t\nmanifests: [fleetman.yaml]\nchecks:\n  - name: s\n    kind: split\n"
        f"    request:\n      url: '{STAFF}'\n"
        "      headers: {x-meshlab-original-dst: 'kube-proxy~x~1'}\n"
    )
    with pytest.raises(InputError, match=r"lab.yaml:8.*x-meshlab"):
        prepare(lab)
