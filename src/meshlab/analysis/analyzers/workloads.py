"""Deployments and the Services in front of them: IST0116, IST0137 (port conflicts),
ML0201 (pods of a split service without `version`), ML0202 (overlapping selectors)."""

from __future__ import annotations

from meshlab.analysis import messages as msg
from meshlab.analysis.analyzers.routes import destinations
from meshlab.analysis.base import Analyzer, Context, Metadata
from meshlab.analysis.util import labels_text
from meshlab.load import istio, k8s
from meshlab.load.manifests import Resource
from meshlab.mesh.names import ROOT_NAMESPACE, resolve_host, selects, service_fqdn


class _ServiceIndex:
    """The Services whose selector picks a Deployment's pods, through an index of Services by
    the first pair of their selector (not every Deployment against every Service)."""

    def __init__(self, services: list[Resource]) -> None:
        self.services = services
        self.by_pair: dict[tuple[str, str], set[int]] = {}
        for service in services:
            selector = service.body.spec.selector
            if selector:
                self.by_pair.setdefault(next(iter(selector.items())), set()).add(id(service))

    def of(self, deployment: Resource) -> list[Resource]:
        labels = deployment.body.spec.template.metadata.labels
        found = {i for pair in labels.items() for i in self.by_pair.get(pair, ())}
        return [
            s
            for s in self.services
            if id(s) in found
            and s.namespace == deployment.namespace
            and selects(s.body.spec.selector, labels)
        ]


def _target(port: k8s.ServicePort, deployment: Resource) -> int | str:
    target = port.targetPort if port.targetPort is not None else port.port
    if isinstance(target, str) and not target.isdigit():
        for container in deployment.body.spec.template.spec.containers:
            for cport in container.ports:
                if cport.name == target:
                    return int(cport.containerPort)
        return target
    return int(target)


def in_mesh(deployment: Resource, namespaces: dict[str, Resource]) -> bool:
    """Istio's util.DeploymentInMesh (pkg/config/analysis/analyzers/util/in_mesh.go): an
    istio-proxy container, else the pod's `sidecar.istio.io/inject` label or annotation, else
    the Namespace's `istio-injection` label. Without a Namespace object in the input meshlab
    takes the lab's namespace as injected (istioctl, reading files, takes it as not)."""
    template = deployment.body.spec.template
    if any(c.name == "istio-proxy" and c.image for c in template.spec.containers):
        return True
    for metadata in (template.metadata.labels, template.metadata.annotations):
        if "sidecar.istio.io/inject" in metadata:
            return bool(metadata["sidecar.istio.io/inject"] == "true")
    namespace = namespaces.get(deployment.namespace)
    if namespace is not None:
        return bool(namespace.body.metadata.labels.get("istio-injection") == "enabled")
    return True


class MultiServiceAnalyzer(Analyzer):
    metadata = Metadata(
        name="deployment.MultiServiceAnalyzer",
        description="Services sharing a Deployment's pods agree on ports and protocols",
        inputs=("Deployment", "Service", "Namespace"),
        needs=frozenset({"services", "pods"}),
    )

    def analyze(self, ctx: Context) -> None:
        index = _ServiceIndex(ctx.of_kind("Service"))
        namespaces = {n.name: n for n in ctx.of_kind("Namespace")}
        for deployment in ctx.of_kind("Deployment"):
            if deployment.namespace == ROOT_NAMESPACE or not in_mesh(deployment, namespaces):
                continue
            mine = index.of(deployment)
            if len(mine) < 2:
                continue
            protocols: dict[int, dict[str, list[str]]] = {}
            targets: dict[int | str, list[tuple[str, int]]] = {}
            for service in mine:
                for port in service.body.spec.ports:
                    protocols.setdefault(port.port, {}).setdefault(port.protocol, []).append(
                        service.name
                    )
                    targets.setdefault(_target(port, deployment), []).append(
                        (service.name, port.port)
                    )
            at = deployment.locate("spec", "template", "metadata", "labels")
            for number, by_protocol in sorted(protocols.items()):
                if len(by_protocol) > 1:
                    ctx.report(
                        msg.MULTIPLE_SERVICES_PROTOCOL(
                            deployment,
                            at,
                            services=", ".join(
                                sorted({n for v in by_protocol.values() for n in v})
                            ),
                            port=number,
                            protocols=", ".join(sorted(by_protocol)),
                        )
                    )
            for target, users in targets.items():
                ports = sorted({p for _, p in users})
                if len(ports) > 1:
                    ctx.report(
                        msg.CONFLICTING_PORTS(
                            deployment,
                            at,
                            services=", ".join(sorted({n for n, _ in users})),
                            ports=", ".join(map(str, ports)),
                            target=target,
                            hint="let each target port be reached through one Service port",
                        )
                    )


class VersionLabelAnalyzer(Analyzer):
    metadata = Metadata(
        name="deployment.VersionLabelAnalyzer",
        description="pods of a service split by subsets carry a `version` label (Kiali)",
        inputs=("Deployment", "Service", "VirtualService", "DestinationRule"),
        needs=frozenset({"services", "pods"}),
    )

    def analyze(self, ctx: Context) -> None:
        split: set[str] = set()
        for vs in ctx.of_kind("VirtualService"):
            split.update(resolve_host(r.host, vs.namespace) for r in destinations(vs) if r.subset)
        for dr in ctx.of_kind("DestinationRule"):
            spec: istio.DestinationRuleSpec = dr.body.spec
            if spec.subsets:
                split.add(resolve_host(spec.host, dr.namespace))
        index = _ServiceIndex(
            [s for s in ctx.of_kind("Service") if service_fqdn(s.name, s.namespace) in split]
        )
        for deployment in ctx.of_kind("Deployment"):
            labels = deployment.body.spec.template.metadata.labels
            if "version" in labels or "app.kubernetes.io/version" in labels:
                continue
            if deployment.install:  # Istio's own gateways: not the student's to label
                continue
            for service in index.of(deployment):
                ctx.report(
                    msg.MISSING_VERSION_LABEL(
                        deployment,
                        deployment.locate("spec", "template", "metadata", "labels"),
                        service=service.name,
                        hosts=[service_fqdn(service.name, service.namespace)],
                        hint="add `version: <name>` to the pod template's labels",
                    )
                )
                break


class OverlappingSelectorsAnalyzer(Analyzer):
    metadata = Metadata(
        name="deployment.OverlappingSelectorsAnalyzer",
        description="a Deployment's selector matching another Deployment's pods (allowed)",
        inputs=("Deployment",),
    )

    def analyze(self, ctx: Context) -> None:
        deployments = ctx.of_kind("Deployment")
        # Candidates by namespace and one label pair of the selector, in apply order: a
        # course-sized folder is not every Deployment against every other.
        in_namespace: dict[str, list[Resource]] = {}
        with_pair: dict[tuple[str, str, str], list[Resource]] = {}
        for deployment in deployments:
            in_namespace.setdefault(deployment.namespace, []).append(deployment)
            for pair in deployment.body.spec.template.metadata.labels.items():
                with_pair.setdefault((deployment.namespace, *pair), []).append(deployment)
        for deployment in deployments:
            selector: k8s.LabelSelector = deployment.body.spec.selector
            if selector.matchLabels:
                pair = next(iter(selector.matchLabels.items()))
                candidates = with_pair.get((deployment.namespace, *pair), [])
            else:
                candidates = in_namespace[deployment.namespace]
            for other in candidates:
                if other is deployment:
                    continue
                if selector.matches(other.body.spec.template.metadata.labels):
                    ctx.report(
                        msg.OVERLAPPING_SELECTORS(
                            deployment,
                            deployment.locate("spec", "selector"),
                            selector=labels_text(selector.matchLabels)
                            if not selector.matchExpressions
                            else "of this Deployment",
                            other=other.name,
                        )
                    )
