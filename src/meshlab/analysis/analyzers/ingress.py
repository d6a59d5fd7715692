"""VirtualServices bound to gateways: IST0140 (subset routing that requests through the
gateway skip), IST0165 (a reference to a Gateway API gateway's internal Istio Gateway).

IST0140 is virtualservice.DestinationHostAnalyzer's analyzeSubset in Istio
(analyzers/virtualservice/destinationhosts.go): a gateway's route to a host without a subset
while another VirtualService splits that host by subsets. The gateway's proxy follows its
own VirtualService only, so the split never applies to requests from outside: the course's
"canary works inside the mesh but not from the browser" lesson. Hosts are compared as FQDNs
here (Istio compares the strings as written), and a VirtualService bound to `mesh` alone is
not a gateway's.
"""

from __future__ import annotations

from meshlab.analysis import messages as msg
from meshlab.analysis.analyzers.routes import destinations
from meshlab.analysis.base import Analyzer, Context, Metadata
from meshlab.analysis.util import INTERNAL_GATEWAY
from meshlab.load import istio
from meshlab.mesh.names import MESH, resolve_host


class IngressRouteRulesAnalyzer(Analyzer):
    metadata = Metadata(
        name="virtualservice.IngressRouteRulesAnalyzer",
        description="a gateway's routes to a host another VirtualService splits by subset",
        inputs=("VirtualService",),
    )

    def analyze(self, ctx: Context) -> None:
        virtual_services = ctx.of_kind("VirtualService")
        split: dict[str, list[str]] = {}  # host FQDN -> VirtualServices that split it
        for vs in virtual_services:
            hosts = {resolve_host(h, vs.namespace) for h in vs.body.spec.hosts}
            for ref in destinations(vs, mirrors=False):
                host = resolve_host(ref.host, vs.namespace)
                if ref.subset and host in hosts and vs.ref not in split.get(host, []):
                    split.setdefault(host, []).append(vs.ref)
        for vs in virtual_services:
            spec: istio.VirtualServiceSpec = vs.body.spec
            gateways = [g for g in spec.gateways if g != MESH]
            if not gateways:
                continue
            for ref in destinations(vs, mirrors=False):
                host = resolve_host(ref.host, vs.namespace)
                splitters = [other for other in split.get(host, []) if other != vs.ref]
                if ref.subset or not splitters:
                    continue
                ctx.report(
                    msg.INGRESS_ROUTE_RULES_NOT_AFFECTED(
                        vs,
                        ref.locate("host"),
                        splitters=", ".join(splitters),
                        host=ref.host,
                        gateways=", ".join(gateways),
                        hosts=[host],
                        hint="route to the subsets here too (the same weights as the mesh "
                        "rule), or bind the splitting VirtualService to the gateway as well",
                    )
                )


class InternalGatewayAnalyzer(Analyzer):
    metadata = Metadata(
        name="virtualservice.InternalGatewayAnalyzer",
        description="VirtualServices do not name Gateway API gateways' internal Gateways",
        inputs=("VirtualService",),
    )

    def analyze(self, ctx: Context) -> None:
        for vs in ctx.of_kind("VirtualService"):
            for i, gateway in enumerate(vs.body.spec.gateways):
                if INTERNAL_GATEWAY in gateway:
                    ctx.report(
                        msg.REFERENCED_INTERNAL_GATEWAY(
                            vs,
                            vs.locate("spec", "gateways", i),
                            gateway=gateway,
                            hint="name the Gateway API gateway through an HTTPRoute, or an "
                            "Istio Gateway of your own",
                        )
                    )
