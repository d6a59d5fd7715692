"""The chain of calls behind one answer, from what the proxies and stand-ins reported.

A sidecar names the upstream it picked in `x-meshlab-upstream-host` (a pod's inbound side,
`envoy://inbound~<pod>~<port>/`, or a pod's stand-in address for pods without a sidecar) and
its cluster; a stand-in that called further lists those calls in `x-meshlab-hops` (compact
JSON, see standins). Everything here comes from processes the run started, but a stand-in
plays an image a student picked: the JSON is parsed defensively (bad entries are dropped,
depth and count are capped), never trusted to be well formed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from meshlab.backends.base import Hop
from meshlab.mesh.registry import PodInstance

HOPS_HEADER = "x-meshlab-hops"
MAX_HOPS = 64
MAX_DEPTH = 16
_INBOUND = "envoy://inbound~"

PodOf = Callable[[str], PodInstance | None]


def pod_finder(by_address: Mapping[str, PodInstance], by_name: Mapping[str, PodInstance]) -> PodOf:
    """Upstream host -> pod: an inbound internal listener names it; else its stand-in port."""

    def find(upstream: str) -> PodInstance | None:
        if upstream.startswith(_INBOUND):
            return by_name.get(upstream[len(_INBOUND) :].split("~", 1)[0])
        return by_address.get(upstream)

    return find


def service_of(cluster: str | None, host: str) -> str:
    """The Service a call went to: the host part of Istio's cluster name
    (`outbound|8080|safe|<fqdn>`, possibly after a proxy's `name~` prefix), else the host as
    called (no route: no cluster)."""
    if cluster and cluster.startswith("kube-proxy~"):
        return cluster.split("~")[1]  # passed through to the Service's ClusterIP
    if cluster:
        name = cluster.rsplit("~", 1)[-1]
        parts = name.split("|")
        if len(parts) == 4 and parts[3]:
            return parts[3]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def nested_hops(header: str | None, caller: str | None, depth: int, pod_of: PodOf) -> list[Hop]:
    """The calls a stand-in reported (its `x-meshlab-hops`), flattened depth first."""
    if not header:
        return []
    try:
        entries = json.loads(header)
    except ValueError:
        return []
    out: list[Hop] = []
    _flatten(entries, caller, depth, pod_of, out)
    return out


def _flatten(entries: Any, caller: str | None, depth: int, pod_of: PodOf, out: list[Hop]) -> None:
    if not isinstance(entries, list) or depth > MAX_DEPTH:
        return
    for entry in entries:
        if len(out) >= MAX_HOPS:
            return
        if not isinstance(entry, dict):
            continue
        upstream = _text(entry.get("upstream"))
        pod = pod_of(upstream) if upstream else None
        status = entry.get("status")
        out.append(
            Hop(
                service=service_of(_text(entry.get("cluster")), _text(entry.get("host"))),
                pod=pod.name if pod else None,
                labels=dict(pod.labels) if pod else {},
                status=status if isinstance(status, int) and not isinstance(status, bool) else None,
                response_flags=_text(entry.get("flags")) or "-",
                caller=caller,
                depth=depth,
                path=_text(entry.get("path")),
            )
        )
        _flatten(entry.get("hops"), pod.name if pod else None, depth + 1, pod_of, out)


def _text(value: Any) -> str:
    return value[:512] if isinstance(value, str) else ""
