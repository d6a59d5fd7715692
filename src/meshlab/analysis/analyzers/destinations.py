"""VirtualService destinations against the registry: IST0101 (host, mirror host, host:port),
IST0112 (no port for a multi-port Service), IST0101 host+subset (no DestinationRule defines it).
"""

from __future__ import annotations

from meshlab.analysis import messages as msg
from meshlab.analysis.analyzers.routes import DestinationRef, destinations
from meshlab.analysis.base import Analyzer, Context, Metadata
from meshlab.analysis.util import HostIndex, close_match, service_ports
from meshlab.load import istio
from meshlab.mesh.names import is_wildcard, resolve_host


class DestinationHostAnalyzer(Analyzer):
    metadata = Metadata(
        name="virtualservice.DestinationHostAnalyzer",
        description="destination hosts and ports of VirtualServices exist in the registry",
        inputs=("VirtualService", "Service", "ServiceEntry", "Gateway"),
    )

    def analyze(self, ctx: Context) -> None:
        index = HostIndex(
            ctx.of_kind("Service"), ctx.of_kind("ServiceEntry"), ctx.of_kind("Gateway")
        )
        for vs in ctx.of_kind("VirtualService"):
            for ref in destinations(vs):
                self._check(ctx, index, ref)

    def _check(self, ctx: Context, index: HostIndex, ref: DestinationRef) -> None:
        vs = ref.vs
        host = resolve_host(ref.host, vs.namespace)
        if is_wildcard(host):
            return  # a wildcard destination names no single cluster; nothing to look up
        if not index.known(host, vs.namespace, vs.body.spec.exportTo):
            if ctx.may_be_unlisted_service(host, self.metadata.name):
                return
            hidden = index.hidden(host) is not None
            where = (
                f" visible from namespace {vs.namespace}" if "." not in ref.host or hidden else ""
            )
            message = msg.MIRROR_HOST_NOT_FOUND if ref.mirror else msg.HOST_NOT_FOUND
            ctx.report(
                message(
                    vs,
                    ref.locate("host"),
                    host=ref.host if ref.host == host else f"{ref.host} ({host})",
                    where=where,
                    hint=index.suggest(host, vs.namespace)
                    if hidden
                    else index.suggest(ref.host, vs.namespace),
                    hosts=[host],
                )
            )
            return
        service = index.service(host)
        if service is not None:
            ports = service_ports(service)
            listed = ", ".join(map(str, ports))
            if ref.port is not None and ref.port not in ports:
                ctx.report(
                    msg.PORT_NOT_FOUND(
                        vs,
                        ref.locate("port"),
                        port=ref.port,
                        service=f"Service {service.name}",
                        ports=listed,
                        hosts=[host],
                        hint=f"use one of the Service's ports: {listed}",
                    )
                )
            elif ref.port is None and len(ports) > 1 and not ref.mirror:
                ctx.report(
                    msg.PORT_SELECTOR_REQUIRED(
                        vs,
                        ref.locate(),
                        host=ref.host,
                        service=service.name,
                        ports=listed,
                        hosts=[host],
                        hint=f"add `port: {{number: {ports[0]}}}` (or another of {listed})",
                    )
                )
            return
        entry = index.entry(host, vs.namespace, vs.body.spec.exportTo)
        if entry is None or ref.port is None:
            return
        entry_spec: istio.ServiceEntrySpec = entry.body.spec
        entry_ports = [p.number for p in entry_spec.ports]
        if entry_ports and ref.port not in entry_ports:
            listed = ", ".join(map(str, entry_ports))
            ctx.report(
                msg.PORT_NOT_FOUND(
                    vs,
                    ref.locate("port"),
                    port=ref.port,
                    service=entry.ref,
                    ports=listed,
                    hosts=[host],
                )
            )


class DestinationSubsetAnalyzer(Analyzer):
    """istioctl's virtualservice.DestinationRuleAnalyzer: a DestinationRule counts only if its
    host, resolved in its own namespace, is exactly the destination's (wildcards never do)."""

    metadata = Metadata(
        name="virtualservice.DestinationRuleAnalyzer",
        description="every subset a VirtualService routes to is defined by a DestinationRule",
        inputs=("VirtualService", "DestinationRule"),
    )

    def analyze(self, ctx: Context) -> None:
        subsets: dict[str, list[str]] = {}
        for dr in ctx.of_kind("DestinationRule"):
            spec: istio.DestinationRuleSpec = dr.body.spec
            names = subsets.setdefault(resolve_host(spec.host, dr.namespace), [])
            names += [s.name for s in spec.subsets if s.name not in names]
        for vs in ctx.of_kind("VirtualService"):
            for ref in destinations(vs):
                if ref.subset is None:
                    continue
                host = resolve_host(ref.host, vs.namespace)
                defined = subsets.get(host, [])
                if ref.subset in defined:
                    continue
                near = close_match(ref.subset, defined)
                effect = "requests routed to it get 503 NC (no cluster)"
                ctx.report(
                    msg.SUBSET_NOT_FOUND(
                        vs,
                        ref.locate("subset"),
                        subset=ref.subset,
                        host=ref.host,
                        defined=(
                            f" (defined: {', '.join(defined)})"
                            if defined
                            else " (no DestinationRule defines subsets for it)"
                        ),
                        hint=f'{effect}; did you mean "{near}"?' if near else effect,
                        hosts=[host],
                    )
                )
