"""The calls behind one request, rebuilt from the proxies' access logs.

A request's lines share its `x-request-id`: Envoy keeps the id a sidecar receives, because
sidecars do not use the remote address (`use_remote_address: false`, so no request is an
edge request; pilot/pkg/networking/core/listener_builder.go) and the course's tag-6 images
copy every `x-` header onto the calls they make. Each *outbound* line is one call: the
caller is the pod whose proxy wrote it, the callee the pod at `%UPSTREAM_HOST%`, and its
`%UPSTREAM_CLUSTER%` names the Service. A pod's own calls are those it made after the call
that reached it, so the tree is rebuilt from the lines alone, in call order (depth first).

Where an app does not pass the id on (the `6-no-header-propagation` images), its calls carry
an id the caller's sidecar made up, and the chain seen here ends at that app: nothing of what
it called is reported (backend.py says so in the lab's notes), and nothing is guessed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from meshlab.backends.base import Hop, PodInfo
from meshlab.backends.kind.accesslog import AccessEntry
from meshlab.backends.kind.apply import raw_object
from meshlab.load.manifests import Resource
from meshlab.mesh.model import Note
from meshlab.records import dataclass

MAX_HOPS = 64  # as the embedded backend caps them (backends/embedded/hops.py)
MAX_DEPTH = 16


@dataclass(frozen=True)
class Call:
    """One call as a proxy logged it: who made it (None: the request's origin) and the pod
    that answered (None: no pod did, e.g. 503 UH, 404 NR or an injected abort)."""

    entry: AccessEntry
    caller: str | None
    callee: PodInfo | None


def hop_of(call: Call, depth: int, service: Callable[[AccessEntry], str]) -> Hop:
    return Hop(
        service=service(call.entry),
        pod=call.callee.name if call.callee else None,
        labels=dict(call.callee.labels) if call.callee else {},
        status=call.entry.response_code,
        response_flags=call.entry.response_flags,
        caller=call.caller,
        depth=depth,
        path=call.entry.path,
    )


def chain(
    root: Call,
    outbound: Mapping[str, Sequence[AccessEntry]],
    pod_at: Callable[[str], PodInfo | None],
    service: Callable[[AccessEntry], str],
) -> tuple[Hop, ...]:
    """The hops of one request, depth first in call order. `root` is the origin's call;
    `outbound` holds, per pod name, that pod's outbound lines with the request's id (the
    origin's own line excluded); `pod_at` maps `%UPSTREAM_HOST%` to the pod there."""
    calls = {
        pod: [Call(e, pod, pod_at(e.upstream_host) if e.upstream_host else None) for e in lines]
        for pod, lines in outbound.items()
    }
    # A pod may be called twice for one request: each of its calls belongs to the latest
    # visit that started before it (times are START_TIME, one clock on a kind node).
    visits: dict[str, list[Call]] = {}
    for call in [root, *(c for cs in calls.values() for c in cs)]:
        if call.callee is not None:
            visits.setdefault(call.callee.name, []).append(call)
    children: dict[int, list[Call]] = {}
    for pod, made in calls.items():
        served = sorted(visits.get(pod, []), key=lambda c: c.entry.start)
        if not served:
            continue  # the id reached this pod's proxy but no logged call reached the pod
        for call in made:
            parent = served[0]
            for earlier in served:
                if earlier.entry.start <= call.entry.start:
                    parent = earlier
            if parent is not call:
                children.setdefault(id(parent), []).append(call)
    hops: list[Hop] = []
    done: set[int] = set()

    def visit(call: Call, depth: int) -> None:
        if id(call) in done or len(hops) >= MAX_HOPS or depth > MAX_DEPTH:
            return
        done.add(id(call))
        hops.append(hop_of(call, depth, service))
        for child in sorted(children.get(id(call), []), key=lambda c: c.entry.start):
            visit(child, depth + 1)

    visit(root, 1)
    return tuple(hops)


def service_namer(
    known: Sequence[str], namespace: str, back: Callable[[str], str]
) -> Callable[[AccessEntry], str]:
    """A call's Service: the FQDN in its outbound cluster (`outbound|8080|risky|<fqdn>`,
    pilot/pkg/model/service.go BuildSubsetKey), else the `:authority` as called when it
    names one of the lab's Services (`name`, `name.ns`, `name.ns.svc[.cluster.local]`, with
    or without a port), else the authority's host as called (as the embedded backend names
    it, backends/embedded/hops.py). Told in the lab's namespace (`back`)."""
    by_short: dict[str, str] = {}
    for fqdn in known:
        name = fqdn.split(".", 1)[0]
        for spelled in (name, f"{name}.{namespace}", f"{name}.{namespace}.svc", fqdn):
            by_short.setdefault(spelled, fqdn)

    def service(entry: AccessEntry) -> str:
        parts = (entry.upstream_cluster or "").split("|")
        if len(parts) == 4 and parts[0] == "outbound" and parts[3]:
            return back(parts[3])
        host = entry.authority
        if host.startswith("["):
            bare = host.split("]", 1)[0] + "]"
        else:
            bare = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        return back(by_short.get(bare.lower(), bare))

    return service


NO_PROPAGATION = "no-header-propagation"  # the course's image tag for apps that pass none on


def propagation_notes(resources: Sequence[Resource]) -> list[Note]:
    """Say where the chain read on a cluster will end early: at apps whose image passes no
    request header on (so no x-request-id either)."""
    notes = []
    for resource in resources:
        if resource.kind not in ("Deployment", "Pod"):
            continue
        obj = raw_object(resource)
        spec = obj.get("spec") or {}
        if resource.kind == "Deployment":
            spec = ((spec.get("template") or {}).get("spec")) or {}
        images = [str(c.get("image", "")) for c in spec.get("containers") or []]
        if any(NO_PROPAGATION in image for image in images):
            notes.append(
                Note(
                    f"{resource.ref} runs an image that passes no request header on, so its "
                    "calls carry an x-request-id its sidecar made up: on kind the chain is read "
                    "by x-request-id, so it ends at this app, and a check bucketing by a "
                    "Service it calls reads `not called` (the calls happen; meshlab cannot "
                    "tell which request made them)",
                    resource.location,
                )
            )
    return notes
