"""Which diagnostics explain the traffic of one request: a failing check lists them as
likely causes, next to the causes the expectation already found (without repeating those)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from meshlab.analysis.analyzers.routes import destinations
from meshlab.analysis.base import Diagnostic
from meshlab.load.manifests import Resource
from meshlab.mesh.names import host_matches, resolve_host, service_fqdn, split_service_host

# A cause the expectation found (its Envoy flag) already says what these codes say.
_SAME_AS_CAUSE = {"IST0101": "NC", "IST0173": "UH", "ML0109": "UH", "ML0110": "UH"}


def request_hosts(resources: Sequence[Resource], host: str, namespace: str) -> set[str]:
    """The FQDN a request for `host` reaches, and every host its VirtualServices route to."""
    fqdns = {resolve_host(host, namespace)}
    spelled = split_service_host(host)  # `name.ns[.svc]` reaches the Service, as DNS does
    if spelled is not None and any(
        r.kind == "Service" and (r.name, r.namespace) == spelled[:2] for r in resources
    ):
        fqdns.add(service_fqdn(*spelled[:2]))
    for vs in (r for r in resources if r.kind == "VirtualService"):
        hosts = [resolve_host(h, vs.namespace) for h in vs.body.spec.hosts]
        if any(host_matches(h, f) for h in hosts for f in list(fqdns)):
            fqdns.update(resolve_host(d.host, vs.namespace) for d in destinations(vs))
    return fqdns


def explaining(
    diagnostics: Sequence[Diagnostic],
    hosts: set[str],
    causes: Iterable[tuple[str | None, str]] = (),
) -> list[Diagnostic]:
    """Diagnostics about these hosts that can change a split; `causes` are (flag, bucket)
    pairs already reported, whose diagnostics are left out."""
    known = list(causes)
    found = []
    for d in diagnostics:
        if not d.explains_traffic or not hosts.intersection(d.hosts):
            continue
        flag = _SAME_AS_CAUSE.get(d.code)
        if flag and any(f == flag and bucket in d.message for f, bucket in known):
            continue
        found.append(d)
    return found
