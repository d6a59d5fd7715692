"""IST0109: two mesh-bound VirtualServices for one host; sidecars keep only the first."""

from __future__ import annotations

from meshlab.analysis import messages as msg
from meshlab.analysis.base import Analyzer, Context, Metadata
from meshlab.load import istio
from meshlab.load.manifests import Resource
from meshlab.mesh.names import bound_to_mesh, export_scope, resolve_host


def _config_order(r: Resource) -> tuple[str, str, str]:
    return (r.body.metadata.creationTimestamp or "", r.name, r.namespace)


class ConflictingMeshHostsAnalyzer(Analyzer):
    metadata = Metadata(
        name="virtualservice.ConflictingMeshGatewayHostsAnalyzer",
        description="at most one mesh-bound VirtualService per host and visibility scope",
        inputs=("VirtualService",),
    )

    def analyze(self, ctx: Context) -> None:
        by_host: dict[str, list[tuple[Resource, int]]] = {}
        for vs in ctx.of_kind("VirtualService"):
            spec: istio.VirtualServiceSpec = vs.body.spec
            if not bound_to_mesh(spec.gateways):
                continue
            for index, host in enumerate(spec.hosts):
                fqdn = resolve_host(host, vs.namespace)
                entries = by_host.setdefault(fqdn, [])
                if all(other is not vs for other, _ in entries):
                    entries.append((vs, index))
        for fqdn, entries in by_host.items():
            for vs, index in entries:
                rivals = [o for o, _ in entries if o is not vs and _conflict(o, vs)]
                if not rivals:
                    continue
                group = sorted([vs, *rivals], key=_config_order)
                ctx.report(
                    msg.CONFLICTING_MESH_VS(
                        vs,
                        vs.locate("spec", "hosts", index),
                        names=", ".join(f"{r.namespace}/{r.name}" for r in group),
                        host=fqdn,
                        winner=f"{group[0].namespace}/{group[0].name}",
                        hosts=[fqdn],
                        hint="merge their http rules into one VirtualService for this host",
                    )
                )


def _scope(vs: Resource) -> frozenset[str]:
    """The namespaces a VirtualService is exported to, `*` for all (a `*` anywhere in the
    list wins, as util.IsExportToAllNamespaces has it)."""
    scope = export_scope(vs.body.spec.exportTo, vs.namespace)
    return frozenset({"*"}) if "*" in scope else scope


def _conflict(a: Resource, b: Resource) -> bool:
    """virtualservice/conflictingmeshgatewayhosts.go: per namespace of the scope, plus the
    VirtualServices exported everywhere, which every namespace sees too."""
    scope_a, scope_b = _scope(a), _scope(b)
    if "~" in scope_a or "~" in scope_b:  # exported nowhere: no sidecar sees it
        return False
    return "*" in scope_a or "*" in scope_b or bool(scope_a & scope_b)
