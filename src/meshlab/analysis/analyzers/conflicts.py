"""IST0109: two mesh-bound VirtualServices for one host; sidecars keep only the first."""

from __future__ import annotations

from meshlab.analysis import messages as msg
from meshlab.analysis.base import Analyzer, Context, Metadata
from meshlab.analysis.util import mesh_bound, resolve
from meshlab.manifests import istio
from meshlab.manifests.load import Resource
from meshlab.mesh.hosts import visible_to

_ELSEWHERE = "\0another-namespace"  # a namespace no object names: what `*` exports to


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
            if not mesh_bound(spec):
                continue
            for index, host in enumerate(spec.hosts):
                fqdn = resolve(host, vs.namespace)
                entries = by_host.setdefault(fqdn, [])
                if all(other is not vs for other, _ in entries):
                    entries.append((vs, index))
        for fqdn, entries in by_host.items():
            if len(entries) < 2:
                continue
            namespaces = {vs.namespace for vs, _ in entries} | {_ELSEWHERE}
            for vs, index in entries:
                rivals = [
                    other
                    for other, _ in entries
                    if other is not vs and _share_a_namespace(vs, other, namespaces)
                ]
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


def _share_a_namespace(a: Resource, b: Resource, namespaces: set[str]) -> bool:
    names = set(namespaces)
    for vs in (a, b):
        names.update(t for t in vs.body.spec.exportTo if t not in (".", "*", "~"))
    return any(
        visible_to(a.body.spec.exportTo, a.namespace, ns)
        and visible_to(b.body.spec.exportTo, b.namespace, ns)
        for ns in names
    )
