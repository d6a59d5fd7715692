"""DestinationRules: IST0174 (host unknown), IST0173 (subset selects no pod), and Kiali's
DestinationRule checks: ML0103-ML0106, ML0109."""

from __future__ import annotations

from meshlab.analysis import messages as msg
from meshlab.analysis import topology
from meshlab.analysis.analyzers.routes import destinations
from meshlab.analysis.base import Analyzer, Context, Metadata
from meshlab.analysis.util import HostIndex, labels_text
from meshlab.load import istio
from meshlab.load.manifests import Resource
from meshlab.mesh.names import resolve_host
from meshlab.mesh.registry import Endpoint, MeshService, PodInstance


def _config_order(r: Resource) -> tuple[str, str, str]:
    return (r.body.metadata.creationTimestamp or "", r.name, r.namespace)


class DestinationRuleHostAnalyzer(Analyzer):
    metadata = Metadata(
        name="destinationrule.UnknownHostAnalyzer",
        description="a DestinationRule's host is a Service or ServiceEntry",
        inputs=("DestinationRule", "Service", "ServiceEntry", "Gateway"),
    )

    def analyze(self, ctx: Context) -> None:
        index = HostIndex(
            ctx.of_kind("Service"), ctx.of_kind("ServiceEntry"), ctx.of_kind("Gateway")
        )
        for dr in ctx.of_kind("DestinationRule"):
            spec: istio.DestinationRuleSpec = dr.body.spec
            host = resolve_host(spec.host, dr.namespace)
            if not index.known(
                host, dr.namespace, dr.body.spec.exportTo
            ) and not ctx.may_be_unlisted_service(host, self.metadata.name):
                ctx.report(
                    msg.UNKNOWN_DR_HOST(
                        dr,
                        dr.locate("spec", "host"),
                        host=spec.host if spec.host == host else f"{spec.host} ({host})",
                        hint=index.suggest(spec.host, dr.namespace),
                        hosts=[host],
                    )
                )


class SubsetPodsAnalyzer(Analyzer):
    metadata = Metadata(
        name="destinationrule.SubsetSelectPodAnalyzer",
        description="every subset's labels select pods, and pods of its host's Service",
        inputs=("DestinationRule", "Service", "Deployment", "Pod", "Node"),
        needs=frozenset({"pods"}),
    )

    def analyze(self, ctx: Context) -> None:
        registry = ctx.registry
        # Pods scheduled on a node also carry its topology labels (istioctl reads Nodes too).
        placed = topology.pod_labels(registry.pods, ctx.of_kind("Node"))
        for dr in ctx.of_kind("DestinationRule"):
            spec: istio.DestinationRuleSpec = dr.body.spec
            host = resolve_host(spec.host, dr.namespace)
            service = registry.service_by_fqdn(host)
            for i, subset in enumerate(spec.subsets):
                if not subset.labels:
                    continue
                at = dr.locate("spec", "subsets", i, "labels")
                selected = _selected(ctx, subset.labels, placed)
                if not selected:
                    versions = sorted(
                        {
                            e.pod.labels[k]
                            for e in _endpoints(service)
                            for k in subset.labels
                            if k in e.pod.labels
                        }
                    )
                    hint = (
                        f"the pods of {spec.host} have {', '.join(versions)}"
                        if versions
                        else "check the labels of the Deployment's pod template"
                    )
                    if set(subset.labels) & topology.NODE_LABELS:
                        hint = topology.hint(subset.labels, registry.pods, placed)
                    ctx.report(
                        msg.SUBSET_SELECTS_NO_PODS(
                            dr,
                            at,
                            subset=subset.name,
                            labels=labels_text(subset.labels),
                            hint=hint,
                            hosts=[host],
                        )
                    )
                    continue
                if service is None or not service.selector:
                    continue
                behind = {e.pod.name for e in _endpoints(service)}
                if not any(p.name in behind for p in selected):
                    owners = sorted({f"{p.owner.kind} {p.owner.name}" for p in selected})
                    ctx.report(
                        msg.SUBSET_NO_ENDPOINTS(
                            dr,
                            at,
                            subset=subset.name,
                            labels=labels_text(subset.labels),
                            pods=", ".join(owners),
                            service=service.name,
                            hint=f"Service {service.name} selects "
                            f"{labels_text(service.selector)}: the subset's pods must match "
                            "that too",
                            hosts=[host],
                        )
                    )


def _selected(
    ctx: Context, selector: dict[str, str], placed: dict[int, dict[str, str]]
) -> list[PodInstance]:
    """The pods a subset's labels pick: by the label index, unless a pod runs on a node."""
    if not placed:
        return ctx.pods_with(selector)
    return [
        p
        for p in ctx.registry.pods
        if all(placed.get(id(p), p.labels).get(k) == v for k, v in selector.items())
    ]


def _endpoints(service: MeshService | None) -> list[Endpoint]:
    if service is None:
        return []
    return [e for port in service.endpoints.values() for e in port]


class SubsetUsageAnalyzer(Analyzer):
    metadata = Metadata(
        name="destinationrule.SubsetUsageAnalyzer",
        description="subsets are used by a route, defined once, and select by labels",
        inputs=("DestinationRule", "VirtualService"),
    )

    def analyze(self, ctx: Context) -> None:
        routed: set[str] = set()
        used: set[tuple[str, str]] = set()
        for vs in ctx.of_kind("VirtualService"):
            for ref in destinations(vs):
                host = resolve_host(ref.host, vs.namespace)
                routed.add(host)
                if ref.subset:
                    used.add((host, ref.subset))
        rules = sorted(ctx.of_kind("DestinationRule"), key=_config_order)
        first: dict[tuple[str, str, str], Resource] = {}
        for dr in rules:
            spec: istio.DestinationRuleSpec = dr.body.spec
            host = resolve_host(spec.host, dr.namespace)
            if spec.subsets and host not in routed and "*" not in host:
                ctx.report(
                    msg.SUBSETS_WITHOUT_VS(
                        dr,
                        dr.locate("spec", "subsets"),
                        host=spec.host,
                        hosts=[host],
                        hint="a subset takes traffic only when a VirtualService route names it",
                    )
                )
            for i, subset in enumerate(spec.subsets):
                at = dr.locate("spec", "subsets", i)
                key = (dr.namespace, host, subset.name)
                if key in first:
                    winner = first[key]
                    ctx.report(
                        msg.DUPLICATE_SUBSET(
                            dr,
                            at,
                            subset=subset.name,
                            host=spec.host,
                            other=winner.ref,
                            winner=winner.ref,
                            hosts=[host],
                        )
                    )
                else:
                    first[key] = dr
                if not subset.labels:
                    ctx.report(
                        msg.SUBSET_WITHOUT_LABELS(
                            dr,
                            at,
                            subset=subset.name,
                            host=spec.host,
                            hosts=[host],
                            hint="give the subset the labels of its pods, e.g. version: v1",
                        )
                    )
                if host in routed and (host, subset.name) not in used:
                    ctx.report(
                        msg.UNUSED_SUBSET(
                            dr, dr.locate("spec", "subsets", i, "name"), subset=subset.name
                        )
                    )
