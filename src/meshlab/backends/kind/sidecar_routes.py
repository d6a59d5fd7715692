"""What the probe's sidecar should have before a request counts: the lab's routes (from the
plan, retargeted to the run's namespace), what Envoy's config dump shows, and the
difference in words for diagnostics."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from meshlab.backends.kind.accesslog import PROBE_POD
from meshlab.backends.kind.apply import Retarget
from meshlab.backends.kind.kube import Kube
from meshlab.backends.kind.origins import PROBE_CONTAINER, SCRIPT_PATH
from meshlab.errors import BackendError
from meshlab.mesh.plan import Forward, MeshPlan
from meshlab.records import dataclass


@dataclass(frozen=True)
class ExpectedRoute:
    """In route table `table`, the virtual host of `fqdn` sends to every one of `clusters`
    (run-namespace names), and each cluster has at least `endpoints[c]` endpoints."""

    table: str
    fqdn: str
    clusters: tuple[str, ...]
    endpoints: Mapping[str, int]


def expected_routes(plan: MeshPlan, retarget: Retarget) -> list[ExpectedRoute]:
    """From meshlab's plan (what istiod would send), for every lab Service on every port."""
    expected = []
    for table, vhosts in sorted(plan.route_tables.items()):
        for vhost in vhosts:
            if vhost.service is None:
                continue
            clusters: dict[str, None] = {}
            for route in vhost.routes:
                if isinstance(route.action, Forward):
                    for target in route.action.targets:
                        clusters[target.cluster] = None
            endpoints = {
                retarget.cluster(name): len(plan.clusters[name].endpoints)
                for name in clusters
                if name in plan.clusters
            }
            expected.append(
                ExpectedRoute(
                    table,
                    retarget.cluster(vhost.service.fqdn),
                    tuple(retarget.cluster(c) for c in clusters),
                    endpoints,
                )
            )
    return expected


def config_problems(expected: Sequence[ExpectedRoute], summary: Mapping[str, Any]) -> list[str]:
    """What the sidecar still lacks; empty when it routes as the plan says."""
    routes = summary.get("routes") or {}
    clusters = summary.get("clusters") or {}
    problems = []
    for want in expected:
        vhost = next(
            (v for v in routes.get(want.table) or [] if want.fqdn in (v.get("domains") or [])),
            None,
        )
        if vhost is None:
            problems.append(f"route table {want.table}: no virtual host for {want.fqdn} yet")
            continue
        have = {t[0] for t in vhost.get("targets") or []}
        missing = [c for c in want.clusters if c not in have]
        if missing:
            problems.append(
                f"route table {want.table}, {want.fqdn}: routes to {', '.join(sorted(have))}; "
                f"not yet to {', '.join(missing)}"
            )
        for name, count in want.endpoints.items():
            hosts = clusters.get(name)
            if hosts is None:
                problems.append(f"cluster {name}: not in the sidecar yet")
            elif len(hosts) < count:
                problems.append(f"cluster {name}: {len(hosts)} of {count} endpoints so far")
    return problems


def render_routes(summary: Mapping[str, Any], fqdns: Iterable[str]) -> str:
    """The sidecar's routes and endpoints for the lab's services, for failure reports."""
    wanted = set(fqdns)
    routes = summary.get("routes") or {}
    clusters = summary.get("clusters") or {}
    lines = []
    used: dict[str, None] = {}
    for table, vhosts in sorted(routes.items()):
        for vhost in vhosts or []:
            if not wanted.intersection(vhost.get("domains") or []):
                continue
            targets = ", ".join(
                f"{name}" + (f" weight {weight}" if weight is not None else "")
                for name, weight in vhost.get("targets") or []
            )
            lines.append(f"route {table} {vhost.get('name')}: {targets or '(no routes)'}")
            for name, _ in vhost.get("targets") or []:
                used[name] = None
    for name in used:
        hosts = clusters.get(name)
        shown = (
            ", ".join(hosts) if hosts else "(none)" if hosts is not None else "(no such cluster)"
        )
        lines.append(f"cluster {name}: {shown}")
    return "\n".join(lines) if lines else "(the sidecar has no routes for the lab's services)"


def read_envoy_summary(kube: Kube, namespace: str) -> dict[str, Any]:
    """The probe sidecar's clusters and routes, from its admin port (podscript.py `envoy`)."""
    argv = ["python3", SCRIPT_PATH, "envoy"]
    result = kube.exec(namespace, PROBE_POD, PROBE_CONTAINER, argv, 60.0)
    if result.returncode != 0:
        raise BackendError(
            f"could not read the probe sidecar's config: {result.stderr.strip()[-500:]}"
        )
    try:
        data = json.loads(result.stdout)
    except ValueError:
        raise BackendError(
            f"the probe printed no config summary: {result.stdout[:200]!r}"
        ) from None
    return dict(data) if isinstance(data, dict) else {}
