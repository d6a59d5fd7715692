"""The embedded backend: our translation plays istiod, a real Envoy plays the client sidecar,
and every pod is a local stand-in process. Everything binds 127.0.0.1 and dies with the run."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

from meshlab.backends.base import Outcome, PodInfo
from meshlab.backends.embedded.envoy.binary import EnvoyBinary, find_envoy
from meshlab.backends.embedded.envoy.bootstrap import (
    RESPONSE_FLAGS_HEADER,
    UPSTREAM_CLUSTER_HEADER,
    UPSTREAM_HOST_HEADER,
    render_bootstrap,
)
from meshlab.backends.embedded.envoy.process import RunningEnvoy, start_envoy, write_bootstrap
from meshlab.backends.embedded.processes import ProcessGroup, start_standins
from meshlab.backends.embedded.standins import PodSpec, describe
from meshlab.load.manifests import Resource
from meshlab.mesh.plan import MeshPlan, build_plan
from meshlab.mesh.registry import PodInstance
from meshlab.mesh.request import ProbeRequest

BODY_LIMIT = 4096


class EmbeddedBackend:
    name = "embedded"

    def __init__(self, envoy: str | None = None) -> None:
        self._explicit = envoy
        self._binary: EnvoyBinary | None = None

    @property
    def binary(self) -> EnvoyBinary:
        if self._binary is None:
            self._binary = find_envoy(self._explicit)
        return self._binary

    def describe(self) -> Mapping[str, str]:
        return {
            "backend": self.name,
            "envoy": self.binary.describe(),
            "envoy_version": self.binary.version,
            "envoy_path": str(self.binary.path),
            "envoy_source": self.binary.source,
        }

    @contextmanager
    def deploy(self, resources: Sequence[Resource], namespace: str) -> Iterator[EmbeddedMesh]:
        plan = build_plan(resources, namespace)
        binary = self.binary
        with tempfile.TemporaryDirectory(prefix="meshlab-") as tmp, ProcessGroup() as group:
            workdir = Path(tmp)
            addresses = start_standins(group, [_pod_spec(p) for p in plan.registry.pods])
            access_log = workdir / "access.log"
            config = render_bootstrap(plan, addresses, access_log=str(access_log))
            envoy = start_envoy(
                group, binary, write_bootstrap(config, workdir / "envoy.json"), workdir
            )
            mesh = EmbeddedMesh(plan, addresses, envoy)
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


class EmbeddedMesh:
    """A deployed lab: sends requests through Envoy's outbound listener, like a sidecar's app."""

    def __init__(
        self, plan: MeshPlan, addresses: Mapping[str, Mapping[int, int]], envoy: RunningEnvoy
    ):
        self.plan = plan
        self.envoy = envoy
        pods = {p.name: p for p in plan.registry.pods}
        self._by_address = {
            f"127.0.0.1:{local}": pods[name]
            for name, ports in addresses.items()
            for local in ports.values()
        }
        self._pods = [
            PodInfo(p.name, dict(p.labels), p.image, describe(p.image)) for p in plan.registry.pods
        ]
        self._clients: dict[int, httpx.Client] = {}

    @property
    def pods(self) -> Sequence[PodInfo]:
        return self._pods

    def send(self, request: ProbeRequest, count: int) -> list[Outcome]:
        refusal = self._unreachable(request)
        if refusal is not None:
            return [Outcome(status=None, error=refusal) for _ in range(count)]
        listener = self.plan.listener_for(request.port)
        assert listener is not None
        client = self._client(self.envoy.listener_ports[listener.name])
        headers = {"host": _authority(request), **request.headers}
        return [self._one(client, request, headers) for _ in range(count)]

    def _unreachable(self, request: ProbeRequest) -> str | None:
        """What happens before Envoy: DNS must know the name, and some listener the port."""
        known = {d for table in self.plan.route_tables.values() for v in table for d in v.domains}
        if request.host not in known or request.host == "*":
            return f"could not resolve host {request.host!r}: no Service has that name"
        if self.plan.listener_for(request.port) is None:
            return f"connection failed: no Service in the mesh serves HTTP on port {request.port}"
        return None

    def _client(self, port: int) -> httpx.Client:
        if port not in self._clients:
            self._clients[port] = httpx.Client(
                base_url=f"http://127.0.0.1:{port}", timeout=30.0, follow_redirects=False
            )
        return self._clients[port]

    def _one(
        self, client: httpx.Client, request: ProbeRequest, headers: Mapping[str, str]
    ) -> Outcome:
        try:
            response = client.request(request.method, request.path, headers=dict(headers))
        except httpx.TransportError as exc:
            return Outcome(status=None, error=f"{type(exc).__name__}: {exc}")
        upstream = response.headers.get(UPSTREAM_HOST_HEADER)
        pod = self._by_address.get(upstream or "")
        return Outcome(
            status=response.status_code,
            pod=pod.name if pod else None,
            labels=dict(pod.labels) if pod else {},
            response_flags=response.headers.get(RESPONSE_FLAGS_HEADER, "-"),
            upstream_cluster=response.headers.get(UPSTREAM_CLUSTER_HEADER),
            body=response.text[:BODY_LIMIT],
        )

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()


def _authority(request: ProbeRequest) -> str:
    return request.host if request.port == 80 else f"{request.host}:{request.port}"
