"""Which diagnostics explain the traffic of one request: a failing check lists them as
likely causes, next to the causes the expectation already found (without repeating those)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from meshlab.analysis.analyzers.routes import destinations
from meshlab.analysis.base import Diagnostic
from meshlab.analysis.util import resolve, service_fqdn
from meshlab.load.manifests import Resource
from meshlab.mesh.hosts import host_matches

# A cause the expectation found (its Envoy flag) already says what these codes say.
_SAME_AS_CAUSE = {"IST0101": "NC", "IST0173": "UH", "ML0109": "UH", "ML0110": "UH"}


def request_hosts(resources: Sequence[Resource], host: str, namespace: str) -> set[str]:
    """The FQDN a request for `host` reaches, and every host its VirtualServices route to."""
    fqdns = {resolve(host, namespace)}
    for service in (r for r in resources if r.kind == "Service"):
        fqdn = service_fqdn(service)
        if host in (
            fqdn,
            f"{service.name}.{service.namespace}",
            f"{service.name}.{service.namespace}.svc",
        ):
            fqdns.add(fqdn)
    for vs in (r for r in resources if r.kind == "VirtualService"):
        hosts = [resolve(h, vs.namespace) for h in vs.body.spec.hosts]
        if any(host_matches(h, f) for h in hosts for f in list(fqdns)):
            fqdns.update(resolve(d.host, vs.namespace) for d in destinations(vs))
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
