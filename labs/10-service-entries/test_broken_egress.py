"""Lab 10's own tests: the service entries and the egress route broken the ways a student
breaks them, each failing the lab with a message that names the cause."""

from __future__ import annotations

import shutil
from pathlib import Path

from meshlab.backends.base import Backend
from meshlab.pipeline import LabReport, run_lab

LAB = Path(__file__).resolve().parent


def broken(tmp_path: Path, file: str, old: str, new: str) -> Path:
    """A copy of the lab with one edit to one of its manifests."""
    copy = tmp_path / "10-service-entries"
    shutil.copytree(LAB, copy, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    text = (copy / file).read_text()
    assert old in text
    (copy / file).write_text(text.replace(old, new, 1))
    return copy


def failed(report: LabReport) -> dict[str, str]:
    return {r.name: r.message for r in report.results if not r.passed}


def test_a_misspelled_service_entry_host_leaves_no_cluster(
    tmp_path: Path, mesh_backend: Backend
) -> None:
    lab = broken(
        tmp_path,
        "service-entries.yaml",
        "    - 2oujlno5e4.execute-api.us-east-1.amazonaws.com\n",
        "    - 2oujlno5e4.execute-api.us-east-1.amazonaws.co\n",
    )
    message = failed(run_lab(lab, backend=mesh_backend))["driver-monitoring-registered"]
    # its VirtualService still routes the real name, to a cluster no ServiceEntry made
    assert "HTTP 503 for 10 of 10" in message
    assert "[Envoy flags NC]" in message
    assert "2oujlno5e4.execute-api.us-east-1.amazonaws.com is not a Service or ServiceEntry" in (
        message
    )


def test_a_route_without_mesh_bypasses_the_egress_gateway(
    tmp_path: Path, mesh_backend: Backend
) -> None:
    lab = broken(
        tmp_path,
        "egress-gateway.yaml",
        "    - outgoing-monitoring\n    - mesh\n",
        "    - outgoing-monitoring\n",
    )
    report = run_lab(lab, backend=mesh_backend)
    messages = failed(report)
    assert list(messages) == ["google-through-egress-gateway"]  # google still answers, directly
    message = messages["google-through-egress-gateway"]
    assert "not called for" in message
    assert "do not include mesh: sidecars ignore this VirtualService" in message


def test_a_match_naming_the_gateway_workload_never_reaches_google(
    tmp_path: Path, mesh_backend: Backend
) -> None:
    lab = broken(
        tmp_path,
        "egress-gateway.yaml",
        "        - gateways:\n            - outgoing-monitoring\n",
        "        - gateways:\n            - istio-egressgateway\n",
    )
    report = run_lab(lab, backend=mesh_backend)
    assert list(failed(report)) == ["google-answers"]
    causes = [d.message for d in report.diagnostics if d.code == "IST0101"]
    assert any("gateway istio-egressgateway does not exist" in c for c in causes), causes
