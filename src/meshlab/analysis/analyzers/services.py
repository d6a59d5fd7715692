"""Services: IST0118 (port names Istio cannot read a protocol from), ML0110 (no pods)."""

from __future__ import annotations

from meshlab.analysis import messages as msg
from meshlab.analysis.base import Analyzer, Context, Metadata
from meshlab.analysis.util import labels_text
from meshlab.load import k8s
from meshlab.load.manifests import Resource
from meshlab.mesh.names import ROOT_NAMESPACE, service_fqdn
from meshlab.mesh.registry import port_protocol

# istioctl analyze leaves out Kubernetes' own namespaces (its testdata
# service-no-port-name-system-namespace.yaml), and service/portname.go skips the control
# plane (util.IsIstioControlPlane: an `istio` label or release=istio) and the Services its
# gateway controllers create (label gateway.istio.io/managed).
_SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease"})
_MANAGED = frozenset(
    {"istio.io-gateway-controller", "istio.io-mesh-controller", "istio.io-eastwest-controller"}
)


def _not_the_students(service: Resource) -> bool:
    labels = service.body.metadata.labels
    return (
        service.namespace in _SYSTEM_NAMESPACES
        or service.namespace == ROOT_NAMESPACE
        or service.install
        or "istio" in labels
        or labels.get("gateway.istio.io/managed") in _MANAGED
    )


class PortNameAnalyzer(Analyzer):
    metadata = Metadata(
        name="service.PortNameAnalyzer",
        description="Service ports say their protocol by name (http-..., tcp-...) or appProtocol",
        inputs=("Service",),
    )

    def analyze(self, ctx: Context) -> None:
        for service in ctx.of_kind("Service"):
            spec: k8s.ServiceSpec = service.body.spec
            if spec.type == "ExternalName" or _not_the_students(service):
                continue
            for i, port in enumerate(spec.ports):
                if port_protocol(port) != "AUTO":
                    continue
                named = f"is named {port.name!r}" if port.name else "has no name"
                ctx.report(
                    msg.PORT_NAME_CONVENTION(
                        service,
                        service.locate("spec", "ports", i, "name" if port.name else "port"),
                        port=port.port,
                        service=service.name,
                        named=named,
                        hint="name it http, http-<suffix>, grpc-..., tcp-... "
                        "(or set appProtocol: http)",
                    )
                )


class ServicePodsAnalyzer(Analyzer):
    metadata = Metadata(
        name="service.SelectsPodsAnalyzer",
        description="a Service's selector matches pods",
        inputs=("Service", "Deployment", "Pod"),
        needs=frozenset({"pods"}),
    )

    def analyze(self, ctx: Context) -> None:
        for service in ctx.of_kind("Service"):
            spec: k8s.ServiceSpec = service.body.spec
            if not spec.selector or spec.type == "ExternalName":
                continue
            if not ctx.pods_with(spec.selector, service.namespace):
                ctx.report(
                    msg.SERVICE_SELECTS_NO_PODS(
                        service,
                        service.locate("spec", "selector"),
                        selector=labels_text(spec.selector),
                        service=service.name,
                        hosts=[service_fqdn(service.name, service.namespace)],
                        hint="the selector must match the labels of the Deployment's pod "
                        "template (spec.template.metadata.labels)",
                    )
                )
