"""The probe on a real mesh: a meshed client pod, its sidecar's access log, the pod map.

How the serving pod of a request is known: the probe pod's own sidecar (the client side)
logs every request with Envoy's `%UPSTREAM_HOST%` (the address of the pod that answered),
`%RESPONSE_FLAGS%` and `%UPSTREAM_CLUSTER%`, keyed by the `x-request-id` the probe set. A
`Telemetry` object turns that log on for the probe pod only (Istio's built-in `envoy`
provider). meshlab reads the log through the API, maps the address to the pod with that IP
in the lab's namespace, and so gets the pod's name and its real labels.

Warm-up: a pod is Ready when its containers run, and the fleetman images declare no readiness
probe, so a Java app may still be starting when the rollout is done. Before the first counted
request to a host and port, meshlab sends batches of WARMUP_BATCH requests and discards them
until none finds a closed port (Envoy's UF flag: upstream connection failure), or until
WARMUP_TIMEOUT. Routing answers such as NC, NR, UH or an injected fault end the warm-up at
once, so a lab that is meant to fail is measured as it is. Only requests after the warm-up
count, and whether one is discarded never depends on which subset served it.

Batching: one exec into the probe pod runs a whole batch (podscript.py) as one client. When
a batch is grown past what a check asked for (a session's read-ahead, session.py), outcomes
are still handed out in the order the requests were sent, so the sequence a check sees is
exactly the sequence the mesh produced. Sessions may send from several threads at once
(`kind: overflow`): the bookkeeping here is under a lock, the execs themselves are not.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from meshlab.backends.base import Deployed, Outcome, PodInfo
from meshlab.backends.kind import diagnostics
from meshlab.backends.kind.accesslog import (
    PROBE_POD,
    AccessEntry,
    LogSource,
)
from meshlab.backends.kind.apply import Clock, Progress, Retarget
from meshlab.backends.kind.chain import service_namer
from meshlab.backends.kind.external import StandIns
from meshlab.backends.kind.istio import EGRESS_SELECTOR, ISTIO_NAMESPACE
from meshlab.backends.kind.kube import Kube
from meshlab.backends.kind.origins import (
    PROBE_CONTAINER,
    PROBE_IMAGE,
    PROBE_LABEL,
    SCRIPT_DIR,
    SCRIPT_PATH,
    OriginPoint,
    Origins,
    gateway_address,
    has_sidecar,
    host_ip,
    lab_pods,
    pod_info,
    pod_ips,
    probe_objects,
    probe_script,
)
from meshlab.backends.kind.session import KindSession, batch_jar, parse_batch
from meshlab.backends.kind.sidecar_routes import (
    ExpectedRoute,
    config_problems,
    read_envoy_summary,
    render_routes,
)
from meshlab.backends.kind.trace import Traced, Tracer
from meshlab.errors import BackendError
from meshlab.mesh.request import Origin, ProbeRequest

__all__ = [
    "PROBE_CONTAINER",
    "PROBE_IMAGE",
    "PROBE_LABEL",
    "SCRIPT_DIR",
    "SCRIPT_PATH",
    "host_ip",
    "parse_batch",
    "probe_objects",
]

REQUEST_TIMEOUT = 30.0  # per request, inside the pod
TARGET_BATCH_SECONDS = 2.0
MAX_BATCH = 500
SYNC_TIMEOUT = 90.0
SYNC_POLL = 1.0
WARMUP_BATCH = 20
WARMUP_TIMEOUT = 180.0
WARMUP_PAUSE = 2.0
GATEWAY_SYNC_TIMEOUT = 30.0  # browser: how long a 404 NR may mean "no routes pushed yet"
# Concurrent clients' batches start together at one wall-clock instant, this far ahead: an
# exec (opened one at a time) and the script's start take a fraction of it
TOGETHER_DELAY = 1.0
TOGETHER_MARGIN = 0.3  # an instant closer than this is too soon for a new exec: a new one


# --- the deployed mesh -------------------------------------------------------------------


class KindMesh(Deployed):
    """`Deployed` on a real cluster: requests from the probe pods or a workload's pod (see
    origins.py), each outcome with the calls behind it (chain.py)."""

    def __init__(
        self,
        kube: Kube,
        namespace: str,
        retarget: Retarget,
        clock: Clock | None = None,
        progress: Progress = lambda line: None,
        run_id: str | None = None,
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.retarget = retarget
        self.clock = clock or Clock()
        self.progress = progress
        self.run_id = run_id or secrets.token_hex(4)
        self.origins = Origins(kube, namespace, retarget, probe_script(), self.clock, progress)
        self.requests_sent = 0
        self.requests_served = 0
        self.requests_warmup = 0
        self.batches = 0
        self._warm: set[tuple[Origin, str, int]] = set()
        self._lock = threading.Lock()  # counters, batch numbers, origins
        self._warm_lock = threading.Lock()
        self._trace_lock = threading.Lock()
        self._in_flight = 0
        self.wall: Callable[[], float] = time.time  # the pod's clock too, on a kind node
        self._start_at = 0.0
        self._seconds_per_request: float | None = None
        self._pods: list[PodInfo] = []
        self._by_ip: dict[str, PodInfo] = {}
        self._by_name: dict[str, PodInfo] = {}
        self._sidecars: list[LogSource] = []
        self.fqdns: list[str] = []  # the lab's Services (run namespace), for routes and hops
        self.external = StandIns(namespace)  # external hosts' stand-ins (external.py)
        self.egress = False  # the lab uses the egress gateway: its pods' logs are read too
        self._gateways: list[LogSource] = []
        self.refresh_pods()
        self.tracer = Tracer(
            kube,
            self.clock,
            lambda: [*self._sidecars, *self._gateways],
            self._pod_at,
            self._pod_named,
            self._service,
        )

    @property
    def pods(self) -> Sequence[PodInfo]:
        return self._pods

    def refresh_pods(self) -> None:
        pods = lab_pods(
            [
                p
                for p in self.kube.list("v1", "Pod", self.namespace)
                if (p.get("metadata") or {}).get("name") != PROBE_POD
            ]
        )
        self._pods = [pod_info(p) for p in pods]
        self._by_ip = {
            ip: info for p, info in zip(pods, self._pods, strict=True) for ip in pod_ips(p)
        }
        self._by_name = {info.name: info for info in self._pods}
        self._sidecars = [
            LogSource(self.namespace, info.name)
            for p, info in zip(pods, self._pods, strict=True)
            if has_sidecar(p)
        ]
        if self.egress:  # its pods answer calls and make them, but are no pods of the lab
            found = self.kube.list(
                "v1", "Pod", ISTIO_NAMESPACE, label_selector="=".join(EGRESS_SELECTOR)
            )
            running = [p for p in found if (p.get("status") or {}).get("phase") == "Running"]
            infos = [pod_info(p) for p in running]
            self._by_ip |= {ip: i for p, i in zip(running, infos, strict=True) for ip in pod_ips(p)}
            self._by_name |= {info.name: info for info in infos}
            self._gateways = [LogSource(ISTIO_NAMESPACE, info.name) for info in infos]

    def use_egress_gateway(self) -> None:
        """Read the egress gateway's pods too: a call through it is traced to the host."""
        self.egress = True
        self.refresh_pods()

    def session(self) -> KindSession:
        """A client of its own: cookies and read-ahead (session.py)."""
        return KindSession(self)

    @contextmanager
    def sending(self) -> Iterator[bool]:
        """Around one session's send: yields whether other sessions are sending right now
        (concurrent clients, see session.py)."""
        with self._lock:
            others = self._in_flight > 0
            self._in_flight += 1
        try:
            yield others
        finally:
            with self._lock:
                self._in_flight -= 1

    def served(self, count: int) -> None:
        with self._lock:
            self.requests_served += count

    def batch(
        self, request: ProbeRequest, count: int, jar: Mapping[str, str], together: bool = False
    ) -> tuple[list[Outcome], dict[str, str]]:
        """`count` requests as one client with cookie jar `jar`, after the warm-up of the
        request's host and port; the outcomes in the order sent, and the jar after them.
        `together`: other clients are sending now; start at the instant they start."""
        origin = request.origin
        with self._warm_lock:  # one thread warms a host up; the others wait for it
            if (origin, request.host, request.port) not in self._warm:
                self._warm_up(request)
        return self._batch(request, count, jar, together)

    def _together_start(self) -> float:
        """One wall-clock instant for the batches of clients that send at the same time:
        their processes in the pod wait for it (podscript.py `start_at`), so their requests
        overlap from the first one, although their execs open one after another."""
        now = self.wall()
        if self._start_at < now + TOGETHER_MARGIN:
            self._start_at = now + TOGETHER_DELAY
        return round(self._start_at, 3)

    def _warm_up(self, request: ProbeRequest) -> None:
        """Discard batches while the app behind the route is not listening yet (UF) or, for
        a browser, while the gateway has no route for the host yet (NR, bounded)."""
        started = self.clock.monotonic()
        where = f"{request.host}:{request.port}"
        browser = request.origin.kind == "browser"
        while True:
            outcomes, _ = self._batch(request, WARMUP_BATCH, None)
            self.requests_warmup += len(outcomes)
            waited = self.clock.monotonic() - started
            closed = sum(1 for o in outcomes if cannot_connect(o))
            unrouted = sum(1 for o in outcomes if browser and no_route(o))
            if unrouted and waited < GATEWAY_SYNC_TIMEOUT:
                self.progress(
                    f"warming up {where} through the ingress gateway: {unrouted} of "
                    f"{len(outcomes)} requests found no route there yet (404 NR); istiod may "
                    "still be pushing the lab's Gateway and VirtualServices"
                )
                self.clock.sleep(WARMUP_PAUSE)
                continue
            if closed == 0:
                break
            if waited >= WARMUP_TIMEOUT:
                self.progress(
                    f"{where}: after {waited:.0f} s, {closed} of {len(outcomes)} requests "
                    "still find no listening app (Envoy flag UF); counting anyway"
                )
                break
            self.progress(
                f"warming up {where}: {closed} of {len(outcomes)} requests found no listening "
                "app yet (Envoy flag UF); its pods may still be starting"
            )
            self.clock.sleep(WARMUP_PAUSE)
        self._warm.add((request.origin, request.host, request.port))

    def batch_size(self, needed: int) -> int:
        """What one exec sends: at least `needed`, else about TARGET_BATCH_SECONDS' worth."""
        if self._seconds_per_request is None:
            return needed  # the first batch measures how long a request takes
        fill = int(TARGET_BATCH_SECONDS / max(self._seconds_per_request, 1e-4))
        return max(needed, min(fill, MAX_BATCH))

    def batch_spec(
        self,
        point: OriginPoint,
        request: ProbeRequest,
        count: int,
        jar: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "url": self.retarget.url(request.url),
            "method": request.method,
            "headers": dict(request.headers),
            "count": count,
            "prefix": f"meshlab-{self.run_id}-{self.batches}-",
            "timeout": REQUEST_TIMEOUT,
        }
        if request.origin.kind == "browser":
            if any(name.lower() == "user-agent" for name in request.headers):
                raise BackendError(
                    f"{request.url}: with `from: browser` the kind backend finds each request "
                    "at the gateway by its User-Agent (the gateway replaces x-request-id), so "
                    "a lab cannot set user-agent there"
                )
            spec["connect"] = gateway_address(point.gateway_port(request.port) or request.port)
            spec["agent_id"] = True
        else:
            stand_in = self.external.connect(request.host, request.port)
            if stand_in is not None:  # an external host: the name is never looked up
                spec["connect"] = stand_in
                # an egress gateway replaces x-request-id (as the ingress gateway does):
                # its line is found by the id in the User-Agent, unless the lab sets one
                named = any(name.lower() == "user-agent" for name in request.headers)
                spec["agent_id"] = not named
        if jar is not None:
            spec["jar"] = dict(jar)
        return spec

    def _batch(
        self,
        request: ProbeRequest,
        count: int,
        jar: Mapping[str, str] | None,
        together: bool = False,
    ) -> tuple[list[Outcome], dict[str, str]]:
        with self._lock:
            point = self.origins.point(request.origin)
        if request.origin.kind == "browser" and point.gateway_port(request.port) is None:
            # as a browser would see it: nothing listens there (and as the embedded backend
            # says it), so the check fails and says why; nothing is sent
            ports = ", ".join(str(number) for number, _ in point.gateway_ports) or "none"
            refused = (
                f"connection refused: the ingress gateway's Service has no port {request.port} "
                f"(its ports: {ports}; the course's NodePort 31380 stands for 80)"
            )
            return [Outcome(status=None, error=refused) for _ in range(count)], dict(jar or {})
        refusal = None if request.origin.kind == "browser" else self.external.refusal(request.host)
        if refusal is not None:  # never a request outside the cluster
            return [Outcome(status=None, error=refusal) for _ in range(count)], dict(jar or {})
        with self._lock:
            self.batches += 1
            spec = self.batch_spec(point, request, count, jar)
            if together:
                spec["start_at"] = self._together_start()
        started = self.clock.monotonic()
        argv = [*point.argv, "batch", json.dumps(spec)]
        result = self.kube.exec(
            self.namespace, point.pod, point.container, argv, 60.0 + count * (REQUEST_TIMEOUT + 1)
        )
        if result.returncode != 0:
            state = "still running" if result.returncode is None else f"exit {result.returncode}"
            raise BackendError(
                f"the probe's batch of {count} requests failed in pod "
                f"{self.namespace}/{point.pod} ({state}): {result.stderr.strip()[-800:]}"
            )
        lines = parse_batch(result.stdout, str(spec["prefix"]), count)
        spent = sum(float(line.get("seconds", 0.0)) for line in lines)
        answered = [line["rid"] for line in lines if line.get("status") is not None]
        with self._lock:
            self.requests_sent += count
            self._seconds_per_request = spent / count
        with self._trace_lock:  # one log reader at a time; batches start meanwhile
            traced = self.tracer.trace(point, answered, started)
            outcomes = [self._outcome(line, traced.get(line["rid"])) for line in lines]
        return outcomes, batch_jar(lines, jar)

    def _outcome(self, line: Mapping[str, Any], traced: Traced | None) -> Outcome:
        status = line.get("status")
        latency = float(line["seconds"]) if line.get("seconds") is not None else None
        if status is None:
            failure = str(line.get("error") or "no response")
            return Outcome(status=None, error=failure, latency=latency)
        body = str(line.get("body", ""))
        raw_headers = line.get("headers")
        headers = (
            {str(k).lower(): str(v) for k, v in raw_headers.items()}
            if isinstance(raw_headers, dict)
            else {}
        )
        if traced is None:  # trace() guarantees one; kept for type safety
            return Outcome(
                status=int(status),
                body=body,
                error="no access-log line",
                headers=headers,
                latency=latency,
            )
        entry, pod = traced.root.entry, traced.root.callee
        error = None
        if entry.upstream_host and pod is None and not entry.inbound:
            error = f"upstream {entry.upstream_host} is no pod of namespace {self.namespace}"
        cluster = entry.upstream_cluster if not entry.inbound else None
        return Outcome(
            status=int(status),
            pod=pod.name if pod else None,
            labels=dict(pod.labels) if pod else {},
            response_flags=entry.response_flags,
            upstream_cluster=self.retarget.back(cluster) if cluster else None,
            error=error,
            body=body,
            headers=headers,
            latency=latency,
            hops=traced.hops,
        )

    def _pod_at(self, upstream_host: str) -> PodInfo | None:
        ip = host_ip(upstream_host)
        if ip not in self._by_ip:
            self.refresh_pods()  # a pod restarted or was rescheduled
        return self._by_ip.get(ip)

    def _pod_named(self, name: str) -> PodInfo | None:
        if name not in self._by_name:
            self.refresh_pods()
        return self._by_name.get(name)

    def _service(self, entry: AccessEntry) -> str:
        """A call's Service, in the lab's namespace (the lab's Services are known late)."""
        return service_namer(self.fqdns, self.namespace, self.retarget.back)(entry)

    def diagnostics(self) -> str:
        """Pods, events and the probe's routes, now: for a check that just failed."""
        return diagnostics.render(diagnostics.collect(self.kube, self.namespace, self.routes_text))

    def routes_text(self) -> str:
        """The probe sidecar's routes for the lab's Services, as diagnostics show them."""
        return render_routes(self.envoy_summary(), self.fqdns)

    # -- config sync ----------------------------------------------------------------------

    def envoy_summary(self) -> dict[str, Any]:
        """The probe sidecar's clusters and routes, from its admin port."""
        return read_envoy_summary(self.kube, self.namespace)

    def wait_for_config(self, expected: Sequence[ExpectedRoute]) -> None:
        """Until the client sidecar routes as the lab says: counting earlier would measure
        the configuration before the lab's (istiod pushes it within seconds)."""
        if not expected:
            return
        deadline = self.clock.monotonic() + SYNC_TIMEOUT
        while True:
            problems = config_problems(expected, self.envoy_summary())
            if not problems:
                self.progress("the probe's sidecar has the lab's routes; counting starts")
                return
            if self.clock.monotonic() >= deadline:
                raise BackendError(
                    f"the probe's sidecar did not get the lab's routing within "
                    f"{SYNC_TIMEOUT:.0f} s:\n" + "\n".join(f"  {p}" for p in problems)
                )
            self.clock.sleep(SYNC_POLL)


def cannot_connect(outcome: Outcome) -> bool:
    """Envoy found the upstream port closed (UF, possibly after retries: URX,UF)."""
    return "UF" in outcome.response_flags.split(",")


def no_route(outcome: Outcome) -> bool:
    """Envoy had no route for the request (404 NR): a gateway before istiod's push."""
    return outcome.status == 404 and "NR" in outcome.response_flags.split(",")
