"""One client of the embedded mesh: it enters where its origin says (`entry.py`), keeps its
own connections and cookie jar, and reads who answered and which calls were behind it."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from meshlab.backends.base import Hop, Outcome, Session
from meshlab.backends.embedded.client import Client, Failure, Reply
from meshlab.backends.embedded.entry import Entry
from meshlab.backends.embedded.envoy.bootstrap import (
    RESPONSE_FLAGS_HEADER,
    UPSTREAM_CLUSTER_HEADER,
    UPSTREAM_HOST_HEADER,
)
from meshlab.backends.embedded.hops import HOPS_HEADER, PodOf, nested_hops, service_of
from meshlab.backends.embedded.standins.egress import ORIGINAL_DST_HEADER
from meshlab.mesh.registry import PodInstance
from meshlab.mesh.request import ProbeRequest

BODY_LIMIT = 4096
POD_HEADER = "x-meshlab-pod"  # every stand-in names itself (standins/server.py)


class EmbeddedSession(Session):
    """One client: its own connections and cookie jar (one `Client` per listener). A batch
    goes over a few keep-alive connections at once; its outcomes come back in request order
    (see docs/statistics.md, "Batches and concurrency")."""

    def __init__(
        self,
        entry_of: Callable[[ProbeRequest], Entry],
        pod_of: PodOf,
        pods_by_name: Mapping[str, PodInstance],
        request_timeout: float,
        watch: Callable[[Reply | Failure], None],
        after_batch: Callable[[list[Outcome]], None],
        on_close: Callable[[EmbeddedSession], None],
    ) -> None:
        self._entry_of = entry_of
        self._pod_of = pod_of
        self._pods_by_name = pods_by_name
        self._timeout = request_timeout
        self._watch = watch
        self._after_batch = after_batch
        self._on_close = on_close
        self._clients: dict[int, Client] = {}

    def send(self, request: ProbeRequest, count: int) -> list[Outcome]:
        entry = self._entry_of(request)
        if entry.port is None:
            return [Outcome(status=None, error=entry.refusal) for _ in range(count)]
        # kube-proxy balances connections, not requests: without a client sidecar, a new
        # connection per request, as the course's `curl` loop makes, so each request is an
        # independent draw of a pod (the sequential test assumes independent draws)
        client = self._client(entry.port, fresh=entry.proxy is None)
        headers = {"host": _authority(request), **request.headers}
        if entry.passthrough:  # iptables: the address the client dialled
            headers[ORIGINAL_DST_HEADER] = entry.passthrough
        results = client.batch(request.method, request.path, headers, count, self._watch)
        # the request's parts once per batch: `ProbeRequest` parses its URL on each access
        host, path = request.host, request.path
        services: dict[str | None, str] = {}
        outcomes = [self._outcome(r, host, path, entry, services) for r in results]
        self._after_batch(outcomes)
        return outcomes

    def _client(self, port: int, fresh: bool) -> Client:
        if port not in self._clients:
            self._clients[port] = Client(port, self._timeout, fresh)
        return self._clients[port]

    def _outcome(
        self,
        result: Reply | Failure,
        host: str,
        path: str,
        entry: Entry,
        services: dict[str | None, str],
    ) -> Outcome:
        """One answer as an Outcome; `services` caches `service_of` by cluster for a batch."""
        if isinstance(result, Failure):
            return Outcome(status=None, error=result.describe(), latency=result.latency)
        headers = result.headers
        if entry.proxy is not None:
            upstream = headers.get(UPSTREAM_HOST_HEADER, "")
            pod = self._pod_of(upstream) if upstream else None
            flags = headers.get(RESPONSE_FLAGS_HEADER, "-")
            cluster = headers.get(UPSTREAM_CLUSTER_HEADER)
        else:  # kube-proxy passes bytes: the stand-in names itself
            pod = self._pods_by_name.get(headers.get(POD_HEADER, ""))
            flags, cluster = "-", None
        service = services.get(cluster)
        if service is None:
            service = services[cluster] = service_of(cluster, host)
        labels = dict(pod.labels) if pod else {}
        first = Hop(
            service=service,
            pod=pod.name if pod else None,
            labels=labels,
            status=result.status,
            response_flags=flags,
            caller=entry.caller,
            depth=1,
            path=path,
        )
        nested = headers.get(HOPS_HEADER)
        hops = (first, *nested_hops(nested, first.pod, 2, self._pod_of)) if nested else (first,)
        return Outcome(
            status=result.status,
            pod=first.pod,
            labels=labels,
            response_flags=flags,
            upstream_cluster=cluster,
            body=result.body[: 4 * BODY_LIMIT].decode("utf-8", "replace")[:BODY_LIMIT],
            headers=headers,
            latency=result.latency,
            hops=hops,
        )

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        self._on_close(self)


def _authority(request: ProbeRequest) -> str:
    return request.host if request.port == 80 else f"{request.host}:{request.port}"
