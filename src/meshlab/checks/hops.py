"""Bucketing by any hop of a request's chain (`by: {service: NAME, label: KEY}`), and the
words a check uses for where its request started.

Why one module: the split and status kinds must agree on which hop a Service names, what
counts as "the chain failed before it" and how that failure is spelt, or the same request
would land in different buckets depending on the kind that counted it.

A hop is found by the Service it called, spelt as a pod in the lab namespace would spell it
(`name`, `name.ns`, `name.ns.svc[.cluster.local]`): Kubernetes' DNS search path, which is
also how Istio reads a short host (pilot/pkg/model/config.go ResolveShortnameToFQDN).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence

from pydantic import field_validator

from meshlab.backends.base import NO_RESPONSE, Hop, Outcome
from meshlab.load.manifests import Resource
from meshlab.load.schema import Strict
from meshlab.mesh.names import (
    CLUSTER_DOMAIN,
    bound_to_mesh,
    host_matches,
    resolve_host,
    service_fqdn,
    split_service_host,
)
from meshlab.mesh.request import Origin

NOT_CALLED = "not called"
INGRESS_GATEWAY = "istio-ingressgateway"  # the gateway meshlab provides for `from: browser`
LABEL_KEY = re.compile(r"[A-Za-z0-9][-A-Za-z0-9_./]{0,316}")
_SERVICE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
# a failure bucket of a hop: `HTTP 503 at fleetman-api-gateway (UF)`, `no response at x`
HOP_FAILURE = re.compile(r"(HTTP \d{3}|no response) at \S+( \([A-Z,]+\))?")

Reading = Callable[[Hop], str | None]  # a hop's bucket, or None: it did not serve


def check_service_name(value: str) -> str:
    if len(value) > 253 or not _SERVICE.fullmatch(value):
        raise ValueError(
            f"service {value!r} is not a Service name: write it as a pod in the lab "
            "namespace would (fleetman-staff-service, or name.namespace)"
        )
    return value


class HopBy(Strict):
    """`by: {service: fleetman-staff-service, label: version}`: the bucket is the `label` of
    the pod that served that Service, wherever it sits in the chain."""

    service: str
    label: str = "version"

    @field_validator("service")
    @classmethod
    def _service(cls, value: str) -> str:
        return check_service_name(value)

    @field_validator("label")
    @classmethod
    def _label(cls, value: str) -> str:
        if not LABEL_KEY.fullmatch(value):
            raise ValueError(f"label {value[:60]!r} is not a pod label key (such as version)")
        return value


def service_host(name: str, namespace: str) -> str:
    """The FQDN a Service name stands for, spelt as in `by.service` or a hop's host (with or
    without `:port`); any other name (an external host) is kept as written."""
    host = name.rsplit(":", 1)[0] if ":" in name else name
    host = host.rstrip(".").lower()
    if "." not in host:
        return service_fqdn(host, namespace)
    parts = split_service_host(host)
    return service_fqdn(parts[0], parts[1]) if parts else host


def short_service(name: str, namespace: str) -> str:
    """How a report names a Service: its short name in the lab namespace, else `name.ns`."""
    host = service_host(name, namespace)
    suffix = f".svc.{CLUSTER_DOMAIN}"
    if not host.endswith(suffix):
        return host
    short, _, ns = host.removesuffix(suffix).partition(".")
    return short if ns == namespace else f"{short}.{ns}"


def failure_at(status: int | None, flags: str, where: str) -> str:
    """`HTTP 503 at fleetman-api-gateway (UF)`: what failed, at which hop, with Envoy's flags."""
    what = NO_RESPONSE if status is None else f"HTTP {status}"
    shown = f" ({flags})" if flags and flags != "-" else ""
    return f"{what} at {where}{shown}"


def hop_failed(hop: Hop) -> bool:
    return hop.status is None or hop.status >= 500 or hop.pod is None


def hop_bucket(
    outcome: Outcome, service: str, namespace: str, read: Reading, origin: Origin | None = None
) -> str:
    """The bucket of `outcome` at the first hop that called `service` (an FQDN): `read(hop)`
    when it gives one; else that hop's failure. No such hop: the deepest failing hop when the
    request failed (the chain broke before reaching the Service), else `not called`."""
    hops = outcome.hops
    for hop in hops:
        if service_host(hop.service, namespace) == service:
            bucket = read(hop)
            if bucket is not None:
                return bucket
            return failure_at(hop.status, hop.response_flags, short_service(hop.service, namespace))
    if not outcome.failed:
        return NOT_CALLED
    failing = [h for h in hops if hop_failed(h)]
    if failing:
        deepest = max(failing, key=lambda h: h.depth)  # max keeps the first of equal depths
        where = short_service(deepest.service, namespace)
        return failure_at(deepest.status, deepest.response_flags, where)
    where = _first_callee(outcome, origin, namespace)
    return failure_at(outcome.status, outcome.response_flags, where)


def _first_callee(outcome: Outcome, origin: Origin | None, namespace: str) -> str:
    """Who answered a failed request that carries no hops: the gateway for a browser (its
    own 404 or 503), else the Service its cluster names (`outbound|8080|safe|host`)."""
    if origin is not None and origin.kind == "browser":
        return INGRESS_GATEWAY
    cluster = (outcome.upstream_cluster or "").split("|")
    return short_service(cluster[3], namespace) if len(cluster) == 4 and cluster[3] else "?"


def label_reader(label: str) -> Reading:
    """A split check's reading: the serving pod's label, if it served (a pod, below 500)."""

    def read(hop: Hop) -> str | None:
        if hop_failed(hop):
            return None
        return hop.labels.get(label, "unknown")

    return read


def origin_words(origin: Origin) -> str:
    """Where a request started, as a check line says it."""
    if origin.kind == "browser":
        return f"from the browser through {INGRESS_GATEWAY}"
    if origin.kind == "workload":
        return f"from workload {origin.workload}"
    if origin.kind == "no-sidecar":
        return "from a pod without a sidecar"
    return "from the meshed test client"


def check_context(origin: Origin, hop: str | None, label: str | None) -> str:
    """What a check line adds after the check's name when the request does not start at the
    meshed test client, or is counted at a hop: ` (from workload webapp, by version at
    fleetman-staff-service)`; nothing for today's checks."""
    said = [] if origin.kind == "mesh" else [origin_words(origin)]
    if hop is not None:
        said.append(f"by {label} at {hop}" if label else f"at {hop}")
    return f" ({', '.join(said)})" if said else ""


def _is_failure(bucket: str) -> bool:
    return bool(HOP_FAILURE.fullmatch(bucket)) or bucket in (NOT_CALLED, NO_RESPONSE)


def unmatched_headers(
    resources: Sequence[Resource], hop: str, namespace: str, headers: Mapping[str, str]
) -> list[str]:
    """Header matches of the VirtualServices for the hop's Service that the request does
    not carry: a misspelt header name in a rule (or in the request) routes nothing."""
    fqdn = service_host(hop, namespace)
    sent = {name.lower() for name in headers}
    lines = []
    for vs in (r for r in resources if r.kind == "VirtualService"):
        hosts = [resolve_host(h, vs.namespace) for h in vs.body.spec.hosts]
        # a deeper hop is a call between pods: only rules bound to the sidecars route it
        if not bound_to_mesh(vs.body.spec.gateways) or not any(
            host_matches(h, fqdn) for h in hosts
        ):
            continue
        for i, rule in enumerate(vs.body.spec.http or []):
            for j, match in enumerate(rule.match or []):
                for name in match.headers:
                    if name.lower() in sent:
                        continue
                    where = vs.locate("spec", "http", i, "match", j, "headers", name)
                    carried = f" (it sends {', '.join(sorted(sent))})" if sent else ""
                    lines.append(
                        f"  likely cause: {vs.ref} matches header {name!r} "
                        f"({where.short()}), which the request does not carry{carried}"
                    )
    return lines


def hop_failure_lines(
    counts: Iterable[tuple[str, int]], n: int, hop: str | None, headers: Mapping[str, str]
) -> list[str]:
    """For a failed check counted at a hop: where the chain broke (the hop that failed, its
    status and flags), how often the Service was never called, and, when headers were sent
    and the hop answered (as the wrong build), that they route a deeper hop only if every app
    before it passes them on."""
    if hop is None or not n:
        return []
    lines = []
    for bucket, count in counts:
        if count and HOP_FAILURE.fullmatch(bucket):
            what, _, rest = bucket.partition(" at ")
            where, _, flags = rest.partition(" (")
            flagged = f", Envoy flags {flags.rstrip(')')}" if flags else ""
            short = "" if where == hop else f"; the request never reached {hop}"
            lines.append(
                f"  the chain failed at {where} for {count} of {n} requests "
                f"({what}{flagged}){short}"
            )
        elif count and bucket == NOT_CALLED:
            lines.append(
                f"  {hop} was not called for {count} of {n} requests: the chain went another "
                "way (which path calls it?)"
            )
    answered = any(count and not _is_failure(bucket) for bucket, count in counts)
    if headers and answered:  # the hop answered, as the wrong build: did the header get there?
        names = ", ".join(sorted(headers))
        lines.append(
            f"  note: a header ({names}) routes a hop after the first only if every app before "
            "it passes it on (the course's tag 6 images propagate x- headers, "
            "6-no-header-propagation images do not)"
        )
    return lines
