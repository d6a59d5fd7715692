"""IST0109: two mesh-bound VirtualServices for one host; sidecars keep only the first."""

from __future__ import annotations

from meshlab.analysis import messages as msg
from meshlab.analysis.base import Analyzer, Context, Metadata
from meshlab.load import istio
from meshlab.load.manifests import Resource
from meshlab.mesh.names import (
    bound_to_mesh,
    export_scope,
    hosts_overlap,
    is_wildcard,
    resolve_host,
)


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
        _wildcard_conflicts(ctx, by_host)


def _wildcard_conflicts(ctx: Context, by_host: dict[str, list[tuple[Resource, int]]]) -> None:
    """Different but overlapping hosts (`*.example.com`, `api.example.com`): istioctl adds to
    a host of a VirtualService exported to some namespaces the VirtualServices exported
    everywhere whose host matches it, wildcard-aware (getExportToAllNamespacesVSListForScopedHost
    in virtualservice/conflictingmeshgatewayhosts.go); two exported everywhere never meet."""
    rivals: dict[tuple[int, int], tuple[Resource, int, str, dict[str, Resource]]] = {}
    for wildcard in (h for h in by_host if is_wildcard(h)):
        for other in by_host:
            if other == wildcard or not hosts_overlap(wildcard, other):
                continue
            for scoped_host, public_host in ((wildcard, other), (other, wildcard)):
                for vs, index in by_host[scoped_host]:
                    scope = _scope(vs)
                    if "*" in scope or "~" in scope:
                        continue
                    for public, public_index in by_host[public_host]:
                        if public is vs or "*" not in _scope(public):
                            continue
                        for at, host, rival in (
                            ((vs, index), scoped_host, public),
                            ((public, public_index), public_host, vs),
                        ):
                            entry = rivals.setdefault((id(at[0]), at[1]), (at[0], at[1], host, {}))
                            rival_host = public_host if rival is public else scoped_host
                            entry[3][f"{rival.namespace}/{rival.name} ({rival_host})"] = rival
    for vs, index, host, found in rivals.values():
        names = sorted(
            {f"{vs.namespace}/{vs.name}", *(f"{r.namespace}/{r.name}" for r in found.values())}
        )
        ctx.report(
            msg.CONFLICTING_MESH_VS_WILDCARD(
                vs,
                vs.locate("spec", "hosts", index),
                names=", ".join(names),
                host=host,
                others=", ".join(sorted(found)),
                hosts=[host],
                hint="give the hosts to one VirtualService, or export both alike",
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
