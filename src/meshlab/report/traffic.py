"""The versioned app graph of a check's traffic, built from the chain of calls behind each
request (`Outcome.hops`): a node per app and version, an edge per caller, callee and Service
with its requests and errors, as Kiali builds its graph from Istio's request metrics.

`TrafficTally` counts outcomes one by one in memory bounded by the lab's apps (a check can send
thousands of requests); `traffic_graph` is the same for a list. `traffic_summary` says the graph
in a few terminal lines: ``browser -> webapp [original 91%, experimental 9%] -> api-gateway``.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import field

from meshlab.backends.base import NO_RESPONSE, Deployed, Hop, Outcome, PodInfo, Session
from meshlab.mesh.request import MESH, Origin, ProbeRequest
from meshlab.records import dataclass
from meshlab.report.model import ChainEdge, GraphNode, TrafficGraph

__all__ = [
    "APP_LABELS",
    "VERSION_LABELS",
    "TracedMesh",
    "TrafficTally",
    "app_and_version",
    "traffic_graph",
    "traffic_summary",
]

# Istio's canonical service and revision, read from the pod's labels in this order, the
# revision defaulting to the literal "latest" (istio/istio pkg/kube/labels/labels.go,
# CanonicalService). Kiali's versioned-app nodes are exactly these (see kiali.md).
APP_LABELS = ("service.istio.io/canonical-name", "app.kubernetes.io/name", "app")
VERSION_LABELS = ("service.istio.io/canonical-revision", "app.kubernetes.io/version", "version")

ORIGIN = "origin"
MAX_VERSIONS = 8  # version nodes per app drawn; the rest fold into one "other versions" node
MAX_APPS = 40  # app nodes kept; the least called fold into "other apps"
OTHER_VERSIONS = "other versions"
OTHER_APPS = "other apps"


def _first_label(labels: Mapping[str, str], names: Sequence[str]) -> str | None:
    return next((labels[name] for name in names if labels.get(name)), None)


def _workload(pod: str) -> str:
    """staff-service-d6ecf67d01-0 -> staff-service: a Deployment's pod minus its two suffixes
    (Istio falls back to the workload's name when a pod has no app label)."""
    parts = pod.split("-")
    return "-".join(parts[:-2]) if len(parts) > 2 else pod


def app_and_version(labels: Mapping[str, str], pod: str) -> tuple[str, str]:
    """Istio's canonical service and revision of a pod (pkg/kube/labels/labels.go)."""
    app = _first_label(labels, APP_LABELS) or _workload(pod)
    return app, _first_label(labels, VERSION_LABELS) or "latest"


def short_service(service: str) -> str:
    """fleetman-staff-service.default.svc.cluster.local:8080 -> fleetman-staff-service."""
    host = service.rsplit(":", 1)[0] if service.count(":") == 1 else service
    return host.split(".svc.")[0].split(".")[0] if ".svc." in host else host


def origin_name(origin: Origin) -> str:
    """The graph's first node: who sent the check's requests."""
    if origin.kind == "browser":
        return "browser via istio-ingressgateway"
    if origin.kind == "workload":
        return f"workload {origin.workload}"
    if origin.kind == "no-sidecar":
        return "client without sidecar"
    return "meshlab probe"


def _failure(hop: Hop) -> str | None:
    """What Kiali counts as an error (4xx, 5xx, no response), named like a check's bucket."""
    if hop.status is None:
        return NO_RESPONSE
    return f"HTTP {hop.status}" if hop.status >= 400 else None


@dataclass
class _Node:
    """A node of the traffic graph while it is tallied: an app's version (the pods seen in it) or
    the calls to a Service no pod answered, at the shallowest call depth it was reached."""

    kind: str
    app: str
    version: str
    depth: int
    pods: set[str] = field(default_factory=set)


@dataclass
class _Edge:
    """The calls from one node to another through one Service, while tallied: how many, which failed
    and how, and Envoy's response flags."""

    service: str
    requests: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    flags: Counter[str] = field(default_factory=Counter)


_EdgeKey = tuple[str, str, str]  # source node, target node, service


@dataclass
class TrafficTally:
    """Counts the calls of a check's outcomes as they arrive; `graph()` at the end."""

    origin: Origin = MESH
    host: str = ""  # what the origin called, for outcomes without hops
    requests: int = 0
    _nodes: dict[str, _Node] = field(default_factory=dict)
    _edges: dict[_EdgeKey, _Edge] = field(default_factory=dict)
    _pods: dict[str, str] = field(default_factory=dict)  # pod -> its node

    @classmethod
    def of(cls, request: ProbeRequest) -> TrafficTally:
        return cls(origin=request.origin, host=request.host)

    def add(self, outcome: Outcome) -> None:
        """One request: each hop becomes a call from its caller's node (the hop one level up
        in the depth-first list; depth 1: the origin) to the node of the pod that answered."""
        self.requests += 1
        hops = outcome.hops or (
            Hop(
                self.host,
                outcome.pod,
                outcome.labels,
                outcome.status,
                outcome.response_flags,
            ),
        )
        stack = [ORIGIN]  # stack[d]: the node that made the calls at depth d + 1
        for hop in hops:
            if not 1 <= hop.depth <= len(stack):  # its caller is not in the list: not placed
                continue
            del stack[hop.depth :]
            source, target = stack[-1], self._node(hop)
            key = (source, target, hop.service)
            edge = self._edges.get(key)
            if edge is None:
                edge = self._edges[key] = _Edge(hop.service)
            edge.requests += 1
            failure = _failure(hop)
            if failure is not None:
                edge.errors[failure] += 1
                edge.flags[hop.response_flags or "-"] += 1
            stack.append(target)

    def _node(self, hop: Hop) -> str:
        """The node of the pod that answered (a pod's labels never change: looked up once)."""
        ident = self._pods.get(hop.pod) if hop.pod is not None else f"svc:{hop.service}"
        if ident is None:  # a pod seen for the first time
            app, version = app_and_version(hop.labels, hop.pod or "")
            ident = self._pods[hop.pod or ""] = f"vapp:{app}:{version}"
            if ident not in self._nodes:
                self._nodes[ident] = _Node("version", app, version, hop.depth)
            self._nodes[ident].pods.add(hop.pod or "")
        node = self._nodes.get(ident)
        if node is None:  # calls to a Service that no pod answered
            node = self._nodes[ident] = _Node(
                "unanswered", short_service(hop.service), "", hop.depth
            )
        node.depth = min(node.depth, hop.depth)
        return ident

    def graph(self) -> TrafficGraph:
        """The graph so far, its versions folded to MAX_VERSIONS per app and MAX_APPS apps."""
        received: Counter[str] = Counter()
        for (_, target, _), edge in self._edges.items():
            received[target] += edge.requests
        rename = _folding(self._nodes, received)
        nodes: dict[str, GraphNode] = {
            ORIGIN: GraphNode(
                id=ORIGIN, kind="origin", app=origin_name(self.origin), requests=self.requests
            )
        }
        pods: dict[str, set[str]] = defaultdict(set)
        for ident, node in self._nodes.items():
            new = rename.get(ident, ident)
            app, version = _split_ident(new, node)
            merged = nodes.setdefault(
                new, GraphNode(id=new, kind=node.kind, app=app, version=version, depth=node.depth)
            )
            merged.depth = min(merged.depth, node.depth)
            merged.requests += received[ident]
            pods[new] |= node.pods
        for ident, names in pods.items():
            nodes[ident].pods = len(names)
        edges: dict[_EdgeKey, ChainEdge] = {}
        for (source, target, service), edge in self._edges.items():
            key = (rename.get(source, source), rename.get(target, target), service)
            caller, callee = nodes[key[0]], nodes[key[1]]
            merged_edge = edges.setdefault(
                key,
                ChainEdge(
                    source=key[0],
                    target=key[1],
                    caller_app=caller.app if caller.kind == "version" else "",
                    caller_version=caller.version,
                    callee_app=callee.app if callee.kind == "version" else "",
                    callee_version=callee.version,
                    service=service,
                ),
            )
            merged_edge.requests += edge.requests
            merged_edge.errors = dict(Counter(merged_edge.errors) + edge.errors)
            merged_edge.flags = dict(Counter(merged_edge.flags) + edge.flags)
        ordered = sorted(nodes.values(), key=lambda n: (n.depth, n.kind, n.app, -n.requests))
        return TrafficGraph(
            origin=origin_name(self.origin),
            requests=self.requests,
            nodes=ordered,
            edges=sorted(edges.values(), key=lambda e: (e.source, -e.requests, e.target)),
            folded=sum(1 for ident in rename if self._nodes[ident].kind == "version"),
        )


def _folding(nodes: Mapping[str, _Node], received: Mapping[str, int]) -> dict[str, str]:
    """Node ids to merge so the page stays small: beyond MAX_VERSIONS versions of an app, the
    least called become "other versions"; beyond MAX_APPS apps, the least called "other apps"."""
    by_app: dict[str, list[str]] = defaultdict(list)
    for ident, node in nodes.items():
        if node.kind == "version":
            by_app[node.app].append(ident)
    rename: dict[str, str] = {}
    totals = {app: sum(received[i] for i in ids) for app, ids in by_app.items()}
    ranked = sorted(by_app, key=lambda app: (-totals[app], app))
    for app in ranked[MAX_APPS - 1 :] if len(ranked) > MAX_APPS else []:
        for ident in by_app.pop(app):
            rename[ident] = f"vapp:{OTHER_APPS}:"
    for app, ids in by_app.items():
        if len(ids) > MAX_VERSIONS:
            ids.sort(key=lambda i: (-received[i], i))
            for ident in ids[MAX_VERSIONS - 1 :]:
                rename[ident] = f"vapp:{app}:{OTHER_VERSIONS}"
    return rename


def _split_ident(ident: str, node: _Node) -> tuple[str, str]:
    if ident.startswith("vapp:") and ident.endswith(f":{OTHER_VERSIONS}"):
        return node.app, OTHER_VERSIONS
    if ident == f"vapp:{OTHER_APPS}:":
        return OTHER_APPS, ""
    return node.app, node.version


def traffic_graph(outcomes: Iterable[Outcome], request: ProbeRequest | None = None) -> TrafficGraph:
    """The versioned app graph of these outcomes (`request`: their origin and host)."""
    tally = TrafficTally.of(request) if request is not None else TrafficTally()
    for outcome in outcomes:
        tally.add(outcome)
    return tally.graph()


class TracedMesh(Deployed):
    """A deployed mesh whose sessions count every outcome they return into one tally: how a
    later stage (the pipeline) gets a check's graph without the check knowing about it
    (checks come before the report stage and cannot import this module). One per check."""

    def __init__(self, mesh: Deployed) -> None:
        self.mesh = mesh
        self.tally: TrafficTally | None = None  # made by the first request: its origin
        # a check may send from several threads at once (overflow: concurrent clients)
        self._lock = threading.Lock()

    @property
    def pods(self) -> Sequence[PodInfo]:
        return self.mesh.pods

    def session(self) -> Session:
        return _TracedSession(self.mesh.session(), self)

    def diagnostics(self) -> str:
        return self.mesh.diagnostics()

    def count(self, request: ProbeRequest, outcomes: Iterable[Outcome]) -> None:
        with self._lock:
            if self.tally is None:
                self.tally = TrafficTally.of(request)
            for outcome in outcomes:
                self.tally.add(outcome)

    def graph(self) -> TrafficGraph | None:
        """The graph of everything sent through this mesh (None: nothing was)."""
        return self.tally.graph() if self.tally is not None else None


class _TracedSession(Session):
    def __init__(self, session: Session, mesh: TracedMesh) -> None:
        self.session = session
        self.mesh = mesh

    def send(self, request: ProbeRequest, count: int) -> list[Outcome]:
        outcomes = self.session.send(request, count)
        self.mesh.count(request, outcomes)
        return outcomes

    def close(self) -> None:
        self.session.close()


# ------------------------------------------------------------------------------------------
# The terminal summary

MAX_LINES = 6  # paths printed; the page has the whole graph
MAX_PATHS = 1000  # paths counted
NO_POD = "no pod"
_SHORT_ORIGIN = {
    "browser via istio-ingressgateway": "browser",
    "meshlab probe": "probe",
    "client without sidecar": "no-sidecar client",
}


def _percent(part: int, whole: int) -> str:
    share = 100 * part / whole if whole else 0.0
    return f"{share:.0f}%" if share >= 1 or share == 0 else f"{share:.1f}%"


@dataclass
class _Step:
    """The calls from one app to the next, merged over versions (of the callee: per version)."""

    versions: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    flags: Counter[str] = field(default_factory=Counter)
    depth: int = 0


def _app_steps(graph: TrafficGraph) -> dict[str, dict[str, _Step]]:
    """caller app -> callee app -> the calls between them; a Service no pod answered counts
    under the app that answered it otherwise (its version: "no pod")."""
    answered_by: dict[str, Counter[str]] = defaultdict(Counter)
    for edge in graph.edges:
        if edge.callee_app:
            answered_by[edge.service][edge.callee_app] += edge.requests
    nodes = {n.id: n for n in graph.nodes}

    def app_of(ident: str, service: str = "") -> str:
        node = nodes.get(ident)
        if node is None:
            return "?"
        if node.kind == "origin":
            long = node.app
            return _SHORT_ORIGIN.get(long, long.removeprefix("workload "))
        if node.kind == "unanswered":
            apps = answered_by.get(service)
            return apps.most_common(1)[0][0] if apps else node.app
        return node.app

    steps: dict[str, dict[str, _Step]] = defaultdict(dict)
    for edge in graph.edges:
        caller = app_of(edge.source)
        callee = app_of(edge.target, edge.service)
        target = nodes.get(edge.target)
        step = steps[caller].setdefault(callee, _Step(depth=target.depth if target else 0))
        step.versions[edge.callee_version if edge.callee_app else NO_POD] += edge.requests
        step.errors.update(edge.errors)
        step.flags.update({f: n for f, n in edge.flags.items() if f and f != "-"})
        if target is not None:
            step.depth = min(step.depth, target.depth)
    return steps


def _say(app: str, step: _Step) -> str:
    total = sum(step.versions.values())
    parts = []
    if set(step.versions) != {"latest"}:
        parts.append(", ".join(f"{v} {_percent(n, total)}" for v, n in step.versions.most_common()))
    failed = sum(step.errors.values())
    if failed:
        what = ", ".join(name for name, _ in step.errors.most_common())
        flags = ",".join(flag for flag, _ in step.flags.most_common())
        parts.append(f"{_percent(failed, total)} failed: {what}" + (f" {flags}" if flags else ""))
    return app + (f" [{'; '.join(parts)}]" if parts else "")


def traffic_summary(graph: TrafficGraph) -> list[str]:
    """The graph in a few lines, one per path from the origin to an app that calls no
    other: each app with its versions' shares of the calls it got along that path and, when
    some failed, how many and how (`!` starts a line with failures):
    ``  chain: browser -> webapp [original 91%, experimental 9%] -> api-gateway``."""
    steps = _app_steps(graph)
    if not steps:
        return []
    origin = next((n.app for n in graph.nodes if n.kind == "origin"), graph.origin)
    start = _SHORT_ORIGIN.get(origin, origin.removeprefix("workload "))
    lines: list[tuple[str, bool]] = []
    paths = 0

    def walk(app: str, said: str, seen: tuple[str, ...], failing: bool) -> None:
        nonlocal paths
        if paths >= MAX_PATHS:  # a dense graph has too many paths to count: stop counting
            return
        nexts = [
            (callee, step)
            for callee, step in sorted(
                steps.get(app, {}).items(), key=lambda kv: (kv[1].depth, kv[0])
            )
            if callee not in seen
        ]
        if not nexts and said:
            paths += 1
            if len(lines) < MAX_LINES:
                lines.append((said, failing))
            return
        for callee, step in nexts:
            failed = failing or sum(step.errors.values()) > 0
            walk(callee, f"{said} -> {_say(callee, step)}", (*seen, callee), failed)

    walk(start, start, (start,), False)
    out = [("! " if failing else "  ") + f"chain: {line}" for line, failing in lines]
    if paths > len(lines):
        more = f"{paths - len(lines)}" if paths < MAX_PATHS else "many"
        out.append(f"  ... and {more} more paths (the results page draws them all)")
    return out
