"""KubeApi over the real `kubernetes` client, with a fake HTTP pool under it: the exact REST
calls the backend makes (paths, verbs, bodies, query strings), and how answers are read."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from meshlab.backends.kind.kube import ApiError, KubeApi, collect_exec, plural_of
from meshlab.errors import BackendError

client = pytest.importorskip(
    "kubernetes.client", reason="needs the kind extra: pip install -e '.[kind]'"
)


class FakeResponse:
    def __init__(self, status: int, payload: Any, chunks: list[bytes] | None = None) -> None:
        self.status = status
        self.reason = {200: "OK", 201: "Created", 404: "Not Found", 409: "Conflict"}.get(
            status, "Error"
        )
        self.data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.headers = {"content-type": "application/json"}
        self.chunks = chunks

    def stream(self, amt: Any = None, decode_content: Any = None) -> Iterator[bytes]:
        yield from self.chunks if self.chunks is not None else [self.data]

    def release_conn(self) -> None:
        pass

    def close(self) -> None:
        pass


class FakePool:
    """urllib3's PoolManager as the kubernetes client calls it."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, list[str]], Any]] = []
        self.headers: list[dict[str, str]] = []
        self.answers: dict[tuple[str, str], FakeResponse] = {}

    def answer(self, method: str, path: str, response: FakeResponse) -> None:
        self.answers[(method, path)] = response

    def request(self, method: str, url: str, **kwargs: Any) -> FakeResponse:
        parts = urlsplit(url)
        body = kwargs.get("body")
        self.headers.append({k.lower(): str(v) for k, v in (kwargs.get("headers") or {}).items()})
        self.requests.append(
            (method, parts.path, parse_qs(parts.query), json.loads(body) if body else None)
        )
        default = FakeResponse(201 if method == "POST" else 200, {"kind": "Status", "items": []})
        return self.answers.get((method, parts.path), default)

    def clear(self) -> None:
        pass


@pytest.fixture
def pool() -> FakePool:
    return FakePool()


@pytest.fixture
def api(pool: FakePool) -> KubeApi:
    api_client = client.ApiClient(client.Configuration(host="https://127.0.0.1:6443"))
    api_client.rest_client.pool_manager = pool
    return KubeApi(api_client)


SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "fleetman-staff-service", "namespace": "ns"},
    "spec": {"selector": {"app": "staff-service"}, "ports": [{"name": "http", "port": 8080}]},
}


@pytest.mark.parametrize(
    ("obj", "path"),
    [
        (SERVICE, "/api/v1/namespaces/ns/services"),
        ({"apiVersion": "v1", "kind": "ConfigMap"}, "/api/v1/namespaces/ns/configmaps"),
        ({"apiVersion": "v1", "kind": "Pod"}, "/api/v1/namespaces/ns/pods"),
        (
            {"apiVersion": "apps/v1", "kind": "Deployment"},
            "/apis/apps/v1/namespaces/ns/deployments",
        ),
        (
            {"apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService"},
            "/apis/networking.istio.io/v1beta1/namespaces/ns/virtualservices",
        ),
        (
            {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule"},
            "/apis/networking.istio.io/v1/namespaces/ns/destinationrules",
        ),
        (
            {"apiVersion": "telemetry.istio.io/v1", "kind": "Telemetry"},
            "/apis/telemetry.istio.io/v1/namespaces/ns/telemetries",
        ),
    ],
)
def test_create_posts_to_the_kinds_endpoint(
    api: KubeApi, pool: FakePool, obj: dict[str, Any], path: str
) -> None:
    obj = {"metadata": {"name": "x", "namespace": "ns"}, **obj}
    api.create(obj, "ns")
    method, sent_path, _, body = pool.requests[-1]
    assert (method, sent_path) == ("POST", path)
    assert body["kind"] == obj["kind"]
    assert body["metadata"]["name"] == obj["metadata"]["name"]


def test_the_service_body_arrives_whole(api: KubeApi, pool: FakePool) -> None:
    api.create(SERVICE, "ns")
    assert pool.requests[-1][3]["spec"] == SERVICE["spec"]


def test_namespaces_are_cluster_scoped(api: KubeApi, pool: FakePool) -> None:
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "meshlab-2-traffic-abc123", "labels": {"istio-injection": "enabled"}},
    }
    api.create(namespace, None)
    api.delete_namespace("meshlab-2-traffic-abc123")
    assert [(m, p) for m, p, _, _ in pool.requests] == [
        ("POST", "/api/v1/namespaces"),
        ("DELETE", "/api/v1/namespaces/meshlab-2-traffic-abc123"),
    ]
    assert pool.requests[0][3]["metadata"]["labels"] == {"istio-injection": "enabled"}
    assert pool.requests[1][2]["propagationPolicy"] == ["Background"]


def test_deleting_a_namespace_that_is_gone_is_fine(api: KubeApi, pool: FakePool) -> None:
    pool.answer("DELETE", "/api/v1/namespaces/gone", FakeResponse(404, {"message": "not found"}))
    api.delete_namespace("gone")


def test_a_refusal_says_what_the_server_said(api: KubeApi, pool: FakePool) -> None:
    pool.answer(
        "POST",
        "/apis/networking.istio.io/v1/namespaces/ns/virtualservices",
        FakeResponse(400, {"kind": "Status", "message": 'admission webhook denied: weight "x"'}),
    )
    with pytest.raises(ApiError) as info:
        api.create({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService"}, "ns")
    assert info.value.status == 400
    assert "admission webhook denied" in str(info.value)


def test_get_and_list(api: KubeApi, pool: FakePool) -> None:
    istiod = {"metadata": {"name": "istiod"}, "spec": {}}
    pool.answer(
        "GET", "/apis/apps/v1/namespaces/istio-system/deployments/istiod", FakeResponse(200, istiod)
    )
    assert api.get("apps/v1", "Deployment", "istio-system", "istiod") == istiod
    pool.answer(
        "GET",
        "/apis/apps/v1/namespaces/istio-system/deployments/istio-ingressgateway",
        FakeResponse(404, {"message": "not found"}),
    )
    assert api.get("apps/v1", "Deployment", "istio-system", "istio-ingressgateway") is None
    pool.answer("GET", "/api/v1/namespaces/ns/pods", FakeResponse(200, {"items": [{"a": 1}]}))
    assert api.list("v1", "Pod", "ns") == [{"a": 1}]
    api.list("v1", "Namespace", None, label_selector="app.kubernetes.io/managed-by=meshlab")
    method, path, query, _ = pool.requests[-1]
    assert (method, path) == ("GET", "/api/v1/namespaces")
    assert query["labelSelector"] == ["app.kubernetes.io/managed-by=meshlab"]


def test_server_version(api: KubeApi, pool: FakePool) -> None:
    pool.answer("GET", "/version/", FakeResponse(200, {"gitVersion": "v1.36.1"}))
    assert api.server_version() == "v1.36.1"


def test_logs_of_the_sidecar(api: KubeApi, pool: FakePool) -> None:
    pool.answer(
        "GET", "/api/v1/namespaces/ns/pods/meshlab-probe/log", FakeResponse(200, b'{"a":1}\n')
    )
    assert api.logs("ns", "meshlab-probe", "istio-proxy", since_seconds=7) == '{"a":1}\n'
    _, _, query, _ = pool.requests[-1]
    assert query["container"] == ["istio-proxy"]
    assert query["sinceSeconds"] == ["7"]


def test_watch_yields_objects_as_they_change(api: KubeApi, pool: FakePool) -> None:
    events = [
        {"type": "ADDED", "object": {"metadata": {"name": "a"}, "status": {}}},
        {"type": "MODIFIED", "object": {"metadata": {"name": "a"}, "status": {"ready": 1}}},
        {"type": "DELETED", "object": {"metadata": {"name": "b"}}},
    ]
    lines = b"".join(json.dumps(e).encode() + b"\n" for e in events)
    pool.answer(
        "GET",
        "/apis/apps/v1/namespaces/ns/deployments",
        FakeResponse(200, b"", chunks=[lines[:40], lines[40:]]),
    )
    seen = list(api.watch("apps/v1", "Deployment", "ns", timeout_s=30))
    assert seen == [events[0]["object"], events[1]["object"]]
    _, _, query, _ = pool.requests[-1]
    assert query["watch"] in (["True"], ["true"])
    assert query["timeoutSeconds"] == ["30"]


def test_unknown_kinds_are_refused() -> None:
    with pytest.raises(BackendError, match="does not know how to apply"):
        plural_of("batch/v1", "Job")


class FakeWs:
    def __init__(self, open_after_run: bool, returncode: Any = 0) -> None:
        self.open_after_run = open_after_run
        self._returncode = returncode
        self.closed = False
        self.timeout: float | None = None

    def run_forever(self, timeout: float) -> None:
        self.timeout = timeout

    def is_open(self) -> bool:
        return self.open_after_run

    def read_stdout(self, timeout: float = 0) -> str:
        return '{"rid": "x-0"}\n'

    def read_stderr(self, timeout: float = 0) -> str:
        return ""

    @property
    def returncode(self) -> int:
        if isinstance(self._returncode, Exception):
            raise self._returncode
        return int(self._returncode)

    def close(self) -> None:
        self.closed = True


def test_exec_output_and_exit_code() -> None:
    ws = FakeWs(open_after_run=False, returncode=0)
    result = collect_exec(ws, 12.0)
    assert (result.stdout, result.returncode, ws.timeout, ws.closed) == (
        '{"rid": "x-0"}\n',
        0,
        12.0,
        True,
    )


def test_exec_still_running_at_the_timeout_has_no_exit_code() -> None:
    ws = FakeWs(open_after_run=True)
    assert collect_exec(ws, 1.0).returncode is None
    assert ws.closed


def test_exec_with_an_odd_error_channel() -> None:
    ws = FakeWs(open_after_run=False, returncode=KeyError("details"))
    assert collect_exec(ws, 1.0).returncode == -1


def test_an_ephemeral_container_is_a_strategic_merge_patch(api: KubeApi, pool: FakePool) -> None:
    """What `kubectl debug` sends: a JSON Patch (the client's pick for a dict) would be
    refused, a merge patch would replace the pod's other ephemeral containers."""
    container = {"name": "meshlab-origin", "image": "python:3.13-alpine"}
    api.add_ephemeral_container("ns", "webapp-7d9f8-00000", container)
    ((method, path, _, body),) = pool.requests
    assert (method, path) == (
        "PATCH",
        "/api/v1/namespaces/ns/pods/webapp-7d9f8-00000/ephemeralcontainers",
    )
    assert body == {"spec": {"ephemeralContainers": [container]}}
    assert pool.headers[0]["content-type"] == "application/strategic-merge-patch+json"
