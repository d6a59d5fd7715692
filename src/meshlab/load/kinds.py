"""The kinds meshlab accepts without modelling them, the way an API server with Istio
installed serves them: Kubernetes' built-in kinds, Istio's CRDs, and any kind that a
CustomResourceDefinition in the input defines (Kiali's MonitoringDashboard, ...).

A lab may list the course's install files (`1-istio-init.yaml`, `2-istio-minikube.yaml`,
`3-kiali-secret.yaml`) as a student applies them: their objects are accepted and listed as
not simulated, never refused. A kind nobody serves is still refused, like kubectl's
`no matches for kind "X" in version "Y"`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import ConfigDict

from meshlab.load.k8s import ObjectMeta
from meshlab.load.schema import Strict
from meshlab.records import dataclass

ISTIO_SYSTEM_NAMESPACE = "istio-system"

# apiVersion -> kinds. Several versions per group, as clusters of the course's era serve them.
_BUILTIN: dict[str, tuple[str, ...]] = {
    "v1": (
        "Endpoints", "LimitRange", "PersistentVolume", "PersistentVolumeClaim",
        "ReplicationController", "ResourceQuota", "PodTemplate", "Node",
    ),
    "apps/v1": ("StatefulSet", "DaemonSet", "ReplicaSet", "ControllerRevision"),
    "batch/v1": ("Job", "CronJob"),
    "autoscaling/v1": ("HorizontalPodAutoscaler",),
    "autoscaling/v2": ("HorizontalPodAutoscaler",),
    "autoscaling/v2beta2": ("HorizontalPodAutoscaler",),
    "autoscaling/v2beta1": ("HorizontalPodAutoscaler",),
    "policy/v1": ("PodDisruptionBudget",),
    "policy/v1beta1": ("PodDisruptionBudget", "PodSecurityPolicy"),
    "rbac.authorization.k8s.io/v1": ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"),
    "rbac.authorization.k8s.io/v1beta1": (
        "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
    ),
    "admissionregistration.k8s.io/v1": (
        "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration",
        "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
    ),
    "admissionregistration.k8s.io/v1beta1": (
        "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration",
    ),
    "apiextensions.k8s.io/v1": ("CustomResourceDefinition",),
    "apiextensions.k8s.io/v1beta1": ("CustomResourceDefinition",),
    "networking.k8s.io/v1": ("Ingress", "IngressClass", "NetworkPolicy"),
    "scheduling.k8s.io/v1": ("PriorityClass",),
    "storage.k8s.io/v1": ("StorageClass", "CSIDriver", "VolumeAttachment"),
    "coordination.k8s.io/v1": ("Lease",),
    "discovery.k8s.io/v1": ("EndpointSlice",),
    "certificates.k8s.io/v1": ("CertificateSigningRequest",),
    # Istio's own CRDs, installed wherever meshlab plays istiod.
    "networking.istio.io/v1alpha3": ("EnvoyFilter",),
    "networking.istio.io/v1beta1": ("ProxyConfig",),
    "security.istio.io/v1beta1": (
        "PeerAuthentication", "RequestAuthentication", "AuthorizationPolicy",
    ),
    "security.istio.io/v1": ("PeerAuthentication", "RequestAuthentication", "AuthorizationPolicy"),
    "telemetry.istio.io/v1alpha1": ("Telemetry",),
    "telemetry.istio.io/v1": ("Telemetry",),
    "extensions.istio.io/v1alpha1": ("WasmPlugin",),
    "install.istio.io/v1alpha1": ("IstioOperator",),
    # The Kubernetes Gateway API, which Istio implements (its CRDs come with recent installs).
    "gateway.networking.k8s.io/v1": ("Gateway", "GatewayClass", "HTTPRoute", "GRPCRoute"),
    "gateway.networking.k8s.io/v1beta1": (
        "Gateway", "GatewayClass", "HTTPRoute", "ReferenceGrant",
    ),
    "gateway.networking.k8s.io/v1alpha2": ("TCPRoute", "TLSRoute", "UDPRoute", "GRPCRoute"),
}  # fmt: skip

_CLUSTER_SCOPED = frozenset(
    {
        "Namespace", "PersistentVolume", "ClusterRole", "ClusterRoleBinding",
        "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration",
        "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
        "CustomResourceDefinition", "IngressClass", "PriorityClass", "StorageClass",
        "CSIDriver", "VolumeAttachment", "CertificateSigningRequest", "PodSecurityPolicy",
        "GatewayClass", "Node",
    }
)  # fmt: skip

# Labels Istio's installers (istioctl, the Helm charts, the addons) put on what they create.
_INSTALL_LABELS = ("release", "istio.io/rev", "operator.istio.io/component")
# Istio's addons (samples/addons) as the course's file ships them.
_INSTALL_APPS = frozenset(
    {"istio", "istiod", "kiali", "kiali-server", "prometheus", "grafana", "jaeger", "zipkin"}
)


class Unmodelled(Strict):
    """The body of a kind meshlab accepts but does not read: its metadata is checked as the
    API server checks it (a name is required, DNS rules), the rest is kept as written."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    apiVersion: str
    kind: str
    metadata: ObjectMeta


@dataclass(frozen=True)
class ServedKinds:
    """What the API server would serve for this input: built-in kinds plus the kinds its
    CustomResourceDefinitions define (and whether each is cluster-scoped)."""

    custom: dict[tuple[str, str], bool]  # (apiVersion, kind) -> cluster-scoped

    def serves(self, api_version: str, kind: str) -> bool:
        return kind in _BUILTIN.get(api_version, ()) or (api_version, kind) in self.custom

    def versions_of(self, kind: str) -> list[str]:
        found = [v for v, kinds in _BUILTIN.items() if kind in kinds]
        return sorted({*found, *(v for v, k in self.custom if k == kind)})

    def cluster_scoped(self, api_version: str, kind: str) -> bool:
        return kind in _CLUSTER_SCOPED or self.custom.get((api_version, kind), False)


def served_kinds(objects: Iterable[Any]) -> ServedKinds:
    """The kinds the CustomResourceDefinitions among `objects` (raw mappings) define."""
    custom: dict[tuple[str, str], bool] = {}
    for raw in objects:
        if not isinstance(raw, dict) or raw.get("kind") != "CustomResourceDefinition":
            continue
        spec = raw.get("spec")
        if not isinstance(spec, dict):
            continue
        group, names = spec.get("group"), spec.get("names")
        kind = names.get("kind") if isinstance(names, dict) else None
        if not isinstance(group, str) or not isinstance(kind, str):
            continue
        versions = [v.get("name") for v in spec.get("versions") or [] if isinstance(v, dict)]
        if isinstance(spec.get("version"), str):  # apiextensions.k8s.io/v1beta1
            versions.append(spec["version"])
        for version in versions:
            if isinstance(version, str):
                custom[(f"{group}/{version}", kind)] = spec.get("scope") == "Cluster"
    return ServedKinds(custom)


def is_istio_install(kind: str, namespace: str, metadata: ObjectMeta, body: Any) -> bool:
    """Whether an object is part of Istio's install (istioctl's manifests, the course's
    `istio-minikube.yaml`, the Kiali/Prometheus/Grafana/Jaeger addons): it lives in
    istio-system, carries the installer's labels, or is one of Istio's or Kiali's CRDs."""
    if ISTIO_SYSTEM_NAMESPACE in (namespace, kind == "Namespace" and metadata.name):
        return True
    labels = metadata.labels
    if labels.get("release") == "istio" or any(k in labels for k in _INSTALL_LABELS[1:]):
        return True
    if _INSTALL_APPS & {labels.get("app", ""), labels.get("app.kubernetes.io/name", "")}:
        return True
    if labels.get("app.kubernetes.io/part-of") in _INSTALL_APPS:
        return True
    if kind == "CustomResourceDefinition":
        spec = getattr(body, "spec", None)
        group = spec.get("group") if isinstance(spec, dict) else None
        return isinstance(group, str) and group.endswith(("istio.io", "kiali.io"))
    return False
