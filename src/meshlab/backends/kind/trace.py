"""Reading a batch's access-log lines until every answered request has its origin's line,
then rebuilding each request's calls (chain.py) from the lines of every sidecar in the run
namespace. meshlab never guesses: a request whose origin line never shows up stops the run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from meshlab.backends.base import Hop, PodInfo
from meshlab.backends.kind.accesslog import AccessEntry, LogSource, read_logs
from meshlab.backends.kind.apply import Clock
from meshlab.backends.kind.chain import Call, chain
from meshlab.backends.kind.istio import ISTIO_NAMESPACE
from meshlab.backends.kind.kube import Kube
from meshlab.backends.kind.origins import USER_AGENT, OriginPoint
from meshlab.errors import BackendError
from meshlab.records import dataclass

LOG_TIMEOUT = 20.0
LOG_POLL = 0.5
# istio-proxy flushes its access log once a second (pkg/envoy/proxy.go, fileFlushInterval),
# and a call deeper in the chain ends before the call that made it: so once this long has
# passed since the batch ended, every line of it is written, the deeper ones included.
CHAIN_SETTLE = 1.5


@dataclass(frozen=True)
class Traced:
    """One request's calls: the origin's own (`root`, depth 1) and all of them as hops."""

    root: Call
    hops: tuple[Hop, ...]


def id_in_agent(user_agent: str) -> str | None:
    """`meshlab-probe/<id>` -> `<id>`: how a request is known at the ingress gateway."""
    prefix = f"{USER_AGENT}/"
    return user_agent[len(prefix) :] if user_agent.startswith(prefix) else None


def _ip(address: str | None) -> str | None:
    if not address:
        return None
    if address.startswith("["):
        return address[1:].split("]", 1)[0]
    return address.rsplit(":", 1)[0] if address.count(":") == 1 else address


def origin_lines(
    point: OriginPoint,
    logs: Mapping[LogSource, Sequence[AccessEntry]],
    wanted: set[str],
) -> dict[str, tuple[LogSource, AccessEntry]]:
    """The origin's own call of each wanted request, with the proxy that logged it: an
    outbound line of the origin's proxy, or (no proxy) the inbound line of the sidecar that
    served a call from the origin's address."""
    found: dict[str, tuple[LogSource, AccessEntry]] = {}
    for source, entries in logs.items():
        from_origin = source in point.proxies
        if point.proxies and not from_origin:
            continue
        for entry in entries:
            if point.proxies and entry.inbound:
                continue
            if not point.proxies and (
                not entry.inbound or _ip(entry.downstream_remote) != point.address
            ):
                continue
            key = id_in_agent(entry.user_agent) if point.via_user_agent else entry.request_id
            if key in wanted and (key not in found or entry.start < found[key][1].start):
                found[key] = (source, entry)
    return found


def outbound_by_id(
    point: OriginPoint, logs: Mapping[LogSource, Sequence[AccessEntry]]
) -> dict[str, dict[str, list[AccessEntry]]]:
    """Request id -> pod -> the calls that pod's sidecar logged with that id. The ingress
    gateway's own lines are left out: behind it, its new id is followed, not the probe's."""
    calls: dict[str, dict[str, list[AccessEntry]]] = {}
    for source, entries in logs.items():
        if point.via_user_agent and source in point.proxies:
            continue
        # a gateway on the way (the egress gateway) made up a new id too: its lines are
        # the request's by the probe's id in their User-Agent
        gateway = source.namespace == ISTIO_NAMESPACE
        for entry in entries:
            if not entry.inbound:
                agent = id_in_agent(entry.user_agent) if gateway else None
                key = agent or entry.request_id
                calls.setdefault(key, {}).setdefault(source.pod, []).append(entry)
    return calls


class Tracer:
    """Waits for a batch's lines and turns them into calls and hops."""

    def __init__(
        self,
        kube: Kube,
        clock: Clock,
        sidecars: Callable[[], Sequence[LogSource]],
        pod_at: Callable[[str], PodInfo | None],
        pod_named: Callable[[str], PodInfo | None],
        service: Callable[[AccessEntry], str],
    ) -> None:
        self.kube = kube
        self.clock = clock
        self.sidecars = sidecars
        self.pod_at = pod_at
        self.pod_named = pod_named
        self.service = service

    def trace(
        self, point: OriginPoint, request_ids: Iterable[str], started: float
    ) -> dict[str, Traced]:
        wanted = set(request_ids)
        if not wanted:
            return {}
        deadline = self.clock.monotonic() + LOG_TIMEOUT
        self.clock.sleep(CHAIN_SETTLE)  # one read then finds everything, most of the time
        while True:
            sources = list(dict.fromkeys([*point.proxies, *self.sidecars()]))
            since = int(self.clock.monotonic() - started) + 5
            logs = read_logs(self.kube, sources, since)
            roots = origin_lines(point, logs, wanted)
            if len(roots) == len(wanted):
                calls = outbound_by_id(point, logs)
                return {rid: self._traced(point, root, calls) for rid, root in roots.items()}
            if self.clock.monotonic() >= deadline:
                raise BackendError(self._missing(point, len(wanted) - len(roots), len(wanted)))
            self.clock.sleep(LOG_POLL)

    def _traced(
        self,
        point: OriginPoint,
        root: tuple[LogSource, AccessEntry],
        calls: Mapping[str, Mapping[str, Sequence[AccessEntry]]],
    ) -> Traced:
        source, entry = root
        if point.proxies:
            callee = self.pod_at(entry.upstream_host) if entry.upstream_host else None
        else:
            callee = self.pod_named(source.pod)
        # a workload's call is made by its pod, as the embedded backend says (entry.py)
        caller = point.pod if point.origin.kind == "workload" else None
        call = Call(entry, caller, callee)
        outbound = {
            pod: [e for e in lines if e is not entry]
            for pod, lines in calls.get(entry.request_id, {}).items()
        }
        return Traced(call, chain(call, outbound, self.pod_at, self.service))

    @staticmethod
    def _missing(point: OriginPoint, missing: int, wanted: int) -> str:
        where = {
            "mesh": "the probe's sidecar",
            "workload": f"the sidecar of pod {point.pod}",
            "browser": "the ingress gateway",
            "no-sidecar": "the sidecar of the pod that served it",
        }[point.origin.kind]
        hint = {
            "browser": "Is access logging on for the gateway? meshlab turns it on in the "
            "clusters it creates (meshConfig.accessLogFile=/dev/stdout); elsewhere, turn it on "
            "yourself (that, or a Telemetry in istio-system)",
            "no-sidecar": "Has the pod that served it a sidecar? Only a sidecar's log tells "
            "which pod served a request from a pod without one",
        }.get(
            point.origin.kind,
            "Is access logging on? (the Telemetry meshlab creates in the run namespace; a mesh "
            "whose meshConfig.accessLogFormat is customised is not supported)",
        )
        return (
            f"{where} logged no access-log line for {missing} of {wanted} requests within "
            f"{LOG_TIMEOUT:.0f} s, so meshlab cannot tell which pod served them. {hint}"
        )
