"""ML0111, beyond istioctl: a mesh VirtualService whose host names no Service or
ServiceEntry. istioctl says nothing (istiod still builds a virtual host for the name), but
no request in a lab uses that name: a misspelt host leaves the real Service on its default
route, all pods equally, and the student sees 50/50 with no word why."""

from __future__ import annotations

from meshlab.analysis import messages as msg
from meshlab.analysis.base import Analyzer, Context, Metadata
from meshlab.analysis.util import HostIndex
from meshlab.load import istio
from meshlab.mesh.names import MESH, bound_to_mesh, is_wildcard, resolve_host


class VirtualServiceHostAnalyzer(Analyzer):
    metadata = Metadata(
        name="virtualservice.HostAnalyzer",
        description="hosts of mesh VirtualServices are Services or ServiceEntries",
        inputs=("VirtualService", "Service", "ServiceEntry", "Gateway"),
    )

    def analyze(self, ctx: Context) -> None:
        index = HostIndex(
            ctx.of_kind("Service"), ctx.of_kind("ServiceEntry"), ctx.of_kind("Gateway")
        )
        for vs in ctx.of_kind("VirtualService"):
            spec: istio.VirtualServiceSpec = vs.body.spec
            if not bound_to_mesh(spec.gateways):
                continue  # a gateway's hosts are outside names (fleetman.com), not Services
            also_gateway = any(g != MESH for g in spec.gateways)
            for i, host in enumerate(spec.hosts):
                if also_gateway and "." in host:
                    continue  # maybe the outside name the gateway serves
                fqdn = resolve_host(host, vs.namespace)
                if is_wildcard(fqdn) or _is_address(fqdn):
                    continue
                if index.known(fqdn, vs.namespace, spec.exportTo):
                    continue
                if ctx.may_be_unlisted_service(fqdn, self.metadata.name):
                    continue
                ctx.report(
                    msg.VS_HOST_NOT_FOUND(
                        vs,
                        vs.locate("spec", "hosts", i),
                        host=host if host == fqdn else f"{host} ({fqdn})",
                        hint=index.suggest(host, vs.namespace)
                        or "use a Service's name (or its full name) or a ServiceEntry's host",
                        hosts=[fqdn],
                    )
                )


def _is_address(host: str) -> bool:
    return host.replace(".", "").isdigit() or ":" in host
