"""Kinds meshlab does not model, and kubectl's leniency: accepted and listed, never refused;
a kind nobody serves is still refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshlab.errors import InputError, InputErrors
from meshlab.load.manifests import load_manifests, load_manifests_partial
from meshlab.mesh.unsimulated import unsimulated_kinds, unsimulated_notes

SERVICE_NULL_MAPS = """\
apiVersion: v1
kind: Service
metadata:
  name: istio-ingressgateway
  namespace: istio-system
  annotations:
  labels:
spec:
  selector: {app: istio-ingressgateway}
  ports:
  - {name: http2, port: 80, targetPort: 8080}
  externalIPs:
"""

CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: monitoringdashboards.monitoring.kiali.io}
spec:
  group: monitoring.kiali.io
  names: {kind: MonitoringDashboard, plural: monitoringdashboards}
  scope: Namespaced
  versions: [{name: v1alpha1, served: true, storage: true}]
"""

DASHBOARD = """\
apiVersion: monitoring.kiali.io/v1alpha1
kind: MonitoringDashboard
metadata: {name: envoy, labels: {app: kiali}}
spec: {title: Envoy}
"""


def write(tmp_path: Path, text: str | bytes, name: str = "m.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def only_error(path: Path) -> InputError:
    with pytest.raises(InputError) as caught:
        load_manifests([path])
    exc = caught.value
    found = list(exc.errors) if isinstance(exc, InputErrors) else [exc]
    assert len(found) == 1
    return found[0]


def test_null_maps_and_lists_are_no_value_as_for_kubectl(tmp_path: Path) -> None:
    [service] = load_manifests([write(tmp_path, SERVICE_NULL_MAPS)])
    assert service.body.metadata.annotations == {}
    assert service.body.metadata.labels == {}
    assert service.install
    assert not service.simulated


def test_a_bom_crlf_and_empty_documents_are_read_as_kubectl_reads_them(tmp_path: Path) -> None:
    text = "---\n\n---\n# only a comment\n---\n" + SERVICE_NULL_MAPS + "---\n"
    data = b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode()
    [service] = load_manifests([write(tmp_path, data)])
    assert service.name == "istio-ingressgateway"
    assert service.location.line == 6  # the BOM takes no column, blank documents no object


def test_a_custom_kind_is_accepted_when_its_crd_is_in_the_input(tmp_path: Path) -> None:
    files = [write(tmp_path, DASHBOARD, "2.yaml"), write(tmp_path, CRD, "1.yaml")]
    loaded = load_manifests(files)
    assert {(r.kind, r.namespace) for r in loaded} == {
        ("MonitoringDashboard", "default"),
        ("CustomResourceDefinition", ""),  # cluster-scoped
    }
    assert not any(r.simulated for r in loaded)


def test_a_custom_kind_without_its_crd_is_refused_like_the_api_server(tmp_path: Path) -> None:
    error = only_error(write(tmp_path, DASHBOARD))
    assert 'unknown kind "MonitoringDashboard"' in error.message
    assert error.hint is not None
    assert "CustomResourceDefinition" in error.hint


@pytest.mark.parametrize(
    ("api_version", "kind", "namespace"),
    [
        ("rbac.authorization.k8s.io/v1", "ClusterRole", ""),
        ("rbac.authorization.k8s.io/v1", "RoleBinding", "default"),
        ("policy/v1", "PodDisruptionBudget", "default"),
        ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", ""),
        ("autoscaling/v2", "HorizontalPodAutoscaler", "default"),
        ("security.istio.io/v1beta1", "RequestAuthentication", "default"),
        ("security.istio.io/v1", "AuthorizationPolicy", "default"),
        ("telemetry.istio.io/v1alpha1", "Telemetry", "default"),
        ("networking.istio.io/v1alpha3", "EnvoyFilter", "default"),
    ],
)
def test_built_in_and_istio_kinds_are_accepted_not_simulated(
    tmp_path: Path, api_version: str, kind: str, namespace: str
) -> None:
    text = f"apiVersion: {api_version}\nkind: {kind}\nmetadata: {{name: x}}\nspec: {{a: 1}}\n"
    [resource] = load_manifests([write(tmp_path, text)])
    assert (resource.kind, resource.namespace, resource.simulated) == (kind, namespace, False)


def test_a_known_kind_in_a_version_nobody_serves_is_refused(tmp_path: Path) -> None:
    text = "apiVersion: policy/v2\nkind: PodDisruptionBudget\nmetadata: {name: x}\n"
    error = only_error(write(tmp_path, text))
    assert error.message == 'no matches for kind "PodDisruptionBudget" in version "policy/v2"'
    assert error.hint is not None
    assert "policy/v1" in error.hint


def test_an_unmodelled_object_still_needs_a_valid_name(tmp_path: Path) -> None:
    text = "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: Bad_Name}\n"
    resources, rejected = load_manifests_partial([write(tmp_path, text)])
    assert resources == []
    assert rejected[0].ref == "Role default/Bad_Name"


def test_unsimulated_objects_are_listed_once_per_kind(tmp_path: Path) -> None:
    roles = "".join(
        f"---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\n"
        f"metadata: {{name: r{i}, labels: {{release: istio}}}}\n"
        for i in range(3)
    )
    mine = "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: mine}\ndata: {a: b}\n"
    loaded = load_manifests([write(tmp_path, CRD + "---\n" + DASHBOARD + roles + mine)])
    described = [group.describe() for group in unsimulated_kinds(loaded)]
    assert described == [
        "CustomResourceDefinition ×1 — part of Istio's install",
        "MonitoringDashboard ×1 — part of Istio's install",
        "ClusterRole ×3 — part of Istio's install",
        "ConfigMap ×1",
    ]
    notes = unsimulated_notes(loaded)
    assert notes[2].message == "not simulated: ClusterRole ×3 — part of Istio's install"
    assert notes[2].location is not None
    assert notes[2].location.line == 15


def test_a_lab_may_list_istios_install_files_as_a_student_applies_them(tmp_path: Path) -> None:
    """`meshlab run` on such a lab: the install files load, their objects are listed as not
    simulated (notes), and only the app and its rules are deployed."""
    from meshlab.backends.fake import FakeBackend, weighted_pods
    from meshlab.pipeline import prepare, run_lab

    root = Path(__file__).parents[2]
    install = root / "tests" / "analysis" / "corpus" / "ml0002-install-files"
    names = ["1-init.yaml", "2-install.yaml", "4-kiali-secret.yaml"]
    for name in names:
        (tmp_path / name).write_bytes((install / name).read_bytes())
    for name in ("fleetman.yaml", "istio-rules.yaml"):
        (tmp_path / name).write_bytes((root / "labs" / "2-traffic" / name).read_bytes())
    lab = (root / "labs" / "2-traffic" / "lab.yaml").read_text()
    manifests = ", ".join([*names, "fleetman.yaml", "istio-rules.yaml"])
    lab = lab.replace("manifests: [fleetman.yaml, istio-rules.yaml]", f"manifests: [{manifests}]")
    (tmp_path / "lab.yaml").write_text(lab)
    prepared = prepare(tmp_path)
    assert all(r.namespace == "default" for r in prepared.resources)
    assert {r.kind for r in prepared.resources} == {
        "Deployment", "Service", "VirtualService", "DestinationRule",
    }  # fmt: skip
    assert all(s.namespace == "default" for s in prepared.plan.registry.services)
    assert not [d for d in prepared.diagnostics if d.level != "info"]
    report = run_lab(tmp_path, backend=FakeBackend(weighted_pods({"safe": 9, "risky": 1})))
    notes = [n.message for n in report.notes]
    assert "not simulated: CustomResourceDefinition ×2 — part of Istio's install" in notes
    assert "not simulated: Deployment ×1 — part of Istio's install" in notes
    assert report.passed


def test_the_gateway_apis_gateway_is_not_istios(tmp_path: Path) -> None:
    """Same kind name, another group: both objects stay, and only Istio's is a Gateway."""
    text = """\
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: fleetman}
spec: {gatewayClassName: istio, listeners: [{name: http, port: 80, protocol: HTTP}]}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: fleetman}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
"""
    loaded = load_manifests([write(tmp_path, text)])
    assert [r.kind for r in loaded] == ["Gateway.gateway.networking.k8s.io", "Gateway"]
    assert [r.simulated for r in loaded] == [False, True]
