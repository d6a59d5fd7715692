"""The embedded backend: our translation plays istiod, a real Envoy plays the client sidecar,
and every pod is a local stand-in process. Everything binds 127.0.0.1 and dies with the run."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

from meshlab.backends.base import Backend, Deployed, LabToDeploy, Outcome, PodInfo, Session
from meshlab.backends.embedded.envoy.binary import EnvoyBinary, find_envoy
from meshlab.backends.embedded.envoy.bootstrap import (
    RESPONSE_FLAGS_HEADER,
    UPSTREAM_CLUSTER_HEADER,
    UPSTREAM_HOST_HEADER,
    render_bootstrap,
)
from meshlab.backends.embedded.envoy.process import RunningEnvoy, start_envoy, write_bootstrap
from meshlab.backends.embedded.envoy.validate import EnvoyValidation
from meshlab.backends.embedded.options import EmbeddedOptions
from meshlab.backends.embedded.processes import ProcessGroup, start_standins
from meshlab.backends.embedded.standins import PodSpec, describe
from meshlab.backends.embedded.watch import Watchdog, request_timeout
from meshlab.mesh.plan import MeshPlan, Note
from meshlab.mesh.registry import PodInstance
from meshlab.mesh.request import ProbeRequest

BODY_LIMIT = 4096


class EmbeddedBackend(Backend):
    name = "embedded"

    def __init__(self, options: EmbeddedOptions | None = None) -> None:
        self.options = options or EmbeddedOptions()
        self._binary: EnvoyBinary | None = None

    @property
    def binary(self) -> EnvoyBinary:
        if self._binary is None:
            self._binary = find_envoy(self.options.envoy)
        return self._binary

    def describe(self) -> Mapping[str, str]:
        return {
            "backend": self.name,
            "envoy": self.binary.describe(),
            "envoy_version": self.binary.version,
            "envoy_path": str(self.binary.path),
            "envoy_source": self.binary.source,
        }

    def notes(self, lab: LabToDeploy) -> Sequence[Note]:
        """The plan's notes: what of Istio our translation leaves out (a real mesh does not)."""
        return list(lab.plan.notes)

    @contextmanager
    def deploy(self, lab: LabToDeploy) -> Iterator[EmbeddedMesh]:
        plan = lab.plan
        binary = self.binary
        with tempfile.TemporaryDirectory(prefix="meshlab-") as tmp, ProcessGroup() as group:
            workdir = Path(tmp)
            pods = [_pod_spec(p) for p in plan.registry.pods]
            # Envoy checks the config while the stand-ins start: a config a sidecar would
            # reject is exit 2 at the object's file:line, not a crash of the run (exit 3).
            with EnvoyValidation(binary, plan, workdir) as validation:
                addresses = start_standins(group, pods, cwd=workdir)
                validation.result()
            access_log = workdir / "access.log"
            config = render_bootstrap(plan, addresses, access_log=str(access_log))
            envoy = start_envoy(
                group, binary, write_bootstrap(config, workdir / "envoy.json"), workdir
            )
            watch = Watchdog(group.processes, envoy.process, envoy.admin_url)
            mesh = EmbeddedMesh(plan, addresses, envoy, watch)
            try:
                yield mesh
            finally:
                mesh.close()


def _pod_spec(pod: PodInstance) -> PodSpec:
    return PodSpec(
        name=pod.name,
        namespace=pod.namespace,
        image=pod.image,
        labels=dict(pod.labels),
        container_ports=tuple(sorted({p.number for p in pod.ports})),
    )


class EmbeddedMesh(Deployed):
    """A deployed lab: sessions send requests through Envoy's outbound listener, like the
    app next to a sidecar."""

    def __init__(
        self,
        plan: MeshPlan,
        addresses: Mapping[str, Mapping[int, int]],
        envoy: RunningEnvoy,
        watch: Watchdog,
    ):
        self.plan = plan
        self.envoy = envoy
        self.watch = watch
        self.request_timeout = request_timeout(_longest_wait(plan))
        pods = {p.name: p for p in plan.registry.pods}
        self.by_address = {
            f"127.0.0.1:{local}": pods[name]
            for name, ports in addresses.items()
            for local in ports.values()
        }
        self._pods = [
            PodInfo(p.name, dict(p.labels), p.image, describe(p.image)) for p in plan.registry.pods
        ]
        self._sessions: set[EmbeddedSession] = set()

    @property
    def pods(self) -> Sequence[PodInfo]:
        return self._pods

    def session(self) -> EmbeddedSession:
        session = EmbeddedSession(self)
        self._sessions.add(session)
        return session

    def forget(self, session: EmbeddedSession) -> None:
        self._sessions.discard(session)

    def unreachable(self, request: ProbeRequest) -> str | None:
        """What happens before Envoy: DNS must know the name, and some listener the port."""
        known = {d for table in self.plan.route_tables.values() for v in table for d in v.domains}
        if request.host not in known or request.host == "*":
            return f"could not resolve host {request.host!r}: no Service has that name"
        if self.plan.listener_for(request.port) is None:
            return f"connection failed: no Service in the mesh serves HTTP on port {request.port}"
        return None

    def close(self) -> None:
        """At teardown: the sessions a check left open lose their connections."""
        for session in list(self._sessions):
            session.close()


class EmbeddedSession(Session):
    """One client: its own connections and cookie jar (one httpx.Client per listener)."""

    def __init__(self, mesh: EmbeddedMesh) -> None:
        self.mesh = mesh
        self._clients: dict[int, httpx.Client] = {}

    def send(self, request: ProbeRequest, count: int) -> list[Outcome]:
        refusal = self.mesh.unreachable(request)
        if refusal is not None:
            return [Outcome(status=None, error=refusal) for _ in range(count)]
        listener = self.mesh.plan.listener_for(request.port)
        assert listener is not None
        client = self._client(self.mesh.envoy.listener_ports[listener.name])
        headers = {"host": _authority(request), **request.headers}
        outcomes = [self._one(client, request, headers) for _ in range(count)]
        self.mesh.watch.after_batch(outcomes)
        return outcomes

    def _client(self, port: int) -> httpx.Client:
        if port not in self._clients:
            # Plain HTTP to Envoy on 127.0.0.1: no TLS context to build (loading the CA
            # bundle costs 0.1 s of CPU per client, per check of every graded submission),
            # and no proxy from the environment may come between the client and its sidecar.
            self._clients[port] = httpx.Client(
                base_url=f"http://127.0.0.1:{port}",
                timeout=self.mesh.request_timeout,
                follow_redirects=False,
                verify=False,  # noqa: S501 (http://127.0.0.1 only: no TLS to verify)
                trust_env=False,
            )
        return self._clients[port]

    def _one(
        self, client: httpx.Client, request: ProbeRequest, headers: Mapping[str, str]
    ) -> Outcome:
        started = time.perf_counter()
        try:
            response = client.request(request.method, request.path, headers=dict(headers))
        except httpx.TransportError as exc:
            latency = time.perf_counter() - started
            if isinstance(exc, httpx.TimeoutException):
                self.mesh.watch.after_timeout()  # a stopped or mute backend: BackendError
            else:
                self.mesh.watch.raise_if_dead()
            return Outcome(status=None, error=f"{type(exc).__name__}: {exc}", latency=latency)
        latency = time.perf_counter() - started
        upstream = response.headers.get(UPSTREAM_HOST_HEADER)
        pod = self.mesh.by_address.get(upstream or "")
        return Outcome(
            status=response.status_code,
            pod=pod.name if pod else None,
            labels=dict(pod.labels) if pod else {},
            response_flags=response.headers.get(RESPONSE_FLAGS_HEADER, "-"),
            upstream_cluster=response.headers.get(UPSTREAM_CLUSTER_HEADER),
            body=response.text[:BODY_LIMIT],
            headers=dict(response.headers.items()),
            latency=latency,
        )

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        self.mesh.forget(self)


def _longest_wait(plan: MeshPlan) -> float:
    """The longest a request may rightly take in this lab: its longest fault delay, plus
    Envoy's retry back-offs (each at most 10 times the base interval, 250 ms by default)."""
    longest = 0.0
    for table in plan.route_tables.values():
        for host in table:
            for route in host.routes:
                delay = (route.fault.delay_s or 0.0) if route.fault else 0.0
                retry = route.retry
                each = 10 * retry.backoff_s if retry and retry.backoff_s else 0.25
                backoff = retry.attempts * each if retry else 0.0
                longest = max(longest, delay + backoff)
    return longest


def _authority(request: ProbeRequest) -> str:
    return request.host if request.port == 80 else f"{request.host}:{request.port}"
