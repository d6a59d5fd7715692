"""The few Kubernetes API calls the kind backend makes, over the `kubernetes` client.

Everything goes in and comes out as plain JSON dicts (what the API server sends), so the
rest of the backend never touches generated model classes, and a test can stand in for the
cluster with `FakeKube` (tests/kind/fakes.py) or at the HTTP level under this class.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from meshlab.errors import BackendError, BackendUnavailable
from meshlab.records import dataclass

Obj = dict[str, Any]

# (apiVersion, kind) -> (plural, namespaced). Core kinds go through CoreV1Api, the rest
# through the generic /apis/{group}/{version}/... endpoints.
KINDS: dict[tuple[str, str], tuple[str, bool]] = {
    ("v1", "Namespace"): ("namespaces", False),
    ("v1", "ConfigMap"): ("configmaps", True),
    ("v1", "Secret"): ("secrets", True),
    ("v1", "ServiceAccount"): ("serviceaccounts", True),
    ("v1", "Service"): ("services", True),
    ("v1", "Pod"): ("pods", True),
    ("v1", "Event"): ("events", True),
    ("apps/v1", "Deployment"): ("deployments", True),
    ("telemetry.istio.io/v1", "Telemetry"): ("telemetries", True),
}
_ISTIO_PLURALS = {
    "VirtualService": "virtualservices",
    "DestinationRule": "destinationrules",
    "Gateway": "gateways",
    "ServiceEntry": "serviceentries",
    "Sidecar": "sidecars",
    "WorkloadEntry": "workloadentries",
    "WorkloadGroup": "workloadgroups",
}


def plural_of(api_version: str, kind: str) -> tuple[str, bool]:
    if (api_version, kind) in KINDS:
        return KINDS[(api_version, kind)]
    if api_version.startswith("networking.istio.io/") and kind in _ISTIO_PLURALS:
        return _ISTIO_PLURALS[kind], True
    raise BackendError(f"the kind backend does not know how to apply {kind} ({api_version})")


@dataclass(frozen=True)
class ExecResult:
    """What a command run inside a pod's container printed and how it exited, as `kubectl exec`
    would show it."""

    stdout: str
    stderr: str
    returncode: int | None  # None: still running when the timeout hit


class Kube(Protocol):
    """The cluster as the backend sees it. `KubeApi` is the real one; tests use a fake."""

    def server_version(self) -> str: ...

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> Obj | None: ...

    def list(
        self, api_version: str, kind: str, namespace: str | None, label_selector: str = ""
    ) -> list[Obj]: ...

    def create(self, obj: Obj, namespace: str | None) -> None: ...

    def delete_namespace(self, name: str) -> None: ...

    def watch(
        self, api_version: str, kind: str, namespace: str, timeout_s: int
    ) -> Iterator[Obj]: ...

    def logs(self, namespace: str, pod: str, container: str, since_seconds: int) -> str: ...

    def exec(
        self, namespace: str, pod: str, container: str, argv: Sequence[str], timeout_s: float
    ) -> ExecResult: ...

    def add_ephemeral_container(self, namespace: str, pod: str, container: Obj) -> None: ...

    def close(self) -> None: ...


def _snake(kind: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", kind).lower()


class KubeApi:
    """`Kube` over the official `kubernetes` client (raw JSON, no model deserialization)."""

    REQUEST_TIMEOUT = (10.0, 60.0)  # connect, read

    def __init__(self, api_client: Any) -> None:
        from kubernetes import client

        self.api_client = api_client
        self.core = client.CoreV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)
        self.version_api = client.VersionApi(api_client)
        self._exceptions = (client.ApiException,)
        # kubernetes/stream/stream.py swaps `api_client.request` for a websocket opener
        # while it connects and puts it back after: two threads opening at once could
        # leave it swapped. Opening is serialised; the streams then run in parallel.
        self._exec_open = threading.Lock()

    @classmethod
    def from_kubeconfig(cls, path: Path, context: str | None = None) -> KubeApi:
        try:
            from kubernetes import config
        except ImportError:
            raise BackendUnavailable(_EXTRA_HINT) from None
        try:
            api_client = config.new_client_from_config(config_file=str(path), context=context)
        except Exception as exc:  # the loader raises ConfigException, ValueError, OSError...
            raise BackendUnavailable(f"cannot use kubeconfig {path}: {exc}") from None
        return cls(api_client)

    # -- calls ----------------------------------------------------------------------------

    def server_version(self) -> str:
        data = self._json(
            lambda: self.version_api.get_code(_preload_content=False, _request_timeout=(5, 10))
        )
        return str(data.get("gitVersion", "unknown"))

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> Obj | None:
        plural, namespaced = plural_of(api_version, kind)
        ns = namespace if namespaced else None
        try:
            if "/" not in api_version:
                method = f"read_namespaced_{_snake(kind)}" if ns else f"read_{_snake(kind)}"
                args: tuple[Any, ...] = (name, ns) if ns else (name,)
                return self._json(lambda: getattr(self.core, method)(*args, **self._opts()))
            group, version = api_version.split("/", 1)
            if ns:
                return self._json(
                    lambda: self.custom.get_namespaced_custom_object(
                        group, version, ns, plural, name, **self._opts()
                    )
                )
            return self._json(
                lambda: self.custom.get_cluster_custom_object(
                    group, version, plural, name, **self._opts()
                )
            )
        except BackendError as exc:
            if getattr(exc, "status", None) == 404:
                return None
            raise

    def list(
        self, api_version: str, kind: str, namespace: str | None, label_selector: str = ""
    ) -> list[Obj]:
        plural, namespaced = plural_of(api_version, kind)
        ns = namespace if namespaced else None
        selector = {"label_selector": label_selector} if label_selector else {}
        if "/" not in api_version:
            method = f"list_namespaced_{_snake(kind)}" if ns else f"list_{_snake(kind)}"
            args: tuple[Any, ...] = (ns,) if ns else ()
            data = self._json(lambda: getattr(self.core, method)(*args, **selector, **self._opts()))
        else:
            group, version = api_version.split("/", 1)
            data = self._json(
                lambda: self.custom.list_namespaced_custom_object(
                    group, version, ns, plural, **selector, **self._opts()
                )
            )
        items = data.get("items") or []
        return [dict(i) for i in items if isinstance(i, Mapping)]

    def create(self, obj: Obj, namespace: str | None) -> None:
        api_version, kind = obj["apiVersion"], obj["kind"]
        plural, namespaced = plural_of(api_version, kind)
        if "/" not in api_version:
            snake = _snake(kind)
            if namespaced:
                call = lambda: getattr(self.core, f"create_namespaced_{snake}")(  # noqa: E731
                    namespace, body=obj, **self._opts()
                )
            else:
                call = lambda: getattr(self.core, f"create_{snake}")(  # noqa: E731
                    body=obj, **self._opts()
                )
        else:
            group, version = api_version.split("/", 1)
            call = lambda: self.custom.create_namespaced_custom_object(  # noqa: E731
                group, version, namespace, plural, obj, **self._opts()
            )
        self._json(call)

    def delete_namespace(self, name: str) -> None:
        try:
            self._json(
                lambda: self.core.delete_namespace(
                    name, propagation_policy="Background", **self._opts()
                )
            )
        except BackendError as exc:
            if getattr(exc, "status", None) != 404:
                raise

    def watch(self, api_version: str, kind: str, namespace: str, timeout_s: int) -> Iterator[Obj]:
        """The objects of one kind in a namespace: the current ones, then each change."""
        from kubernetes import watch

        plural, _ = plural_of(api_version, kind)
        stream = watch.Watch()
        if "/" not in api_version:
            func: Any = getattr(self.core, f"list_namespaced_{_snake(kind)}")
            args: tuple[Any, ...] = (namespace,)
        else:
            func = self.custom.list_namespaced_custom_object
            args = (*api_version.split("/", 1), namespace, plural)
        try:
            for event in stream.stream(func, *args, timeout_seconds=timeout_s, deserialize=False):
                if (
                    isinstance(event, Mapping)
                    and isinstance(event.get("object"), Mapping)
                    and event.get("type") in ("ADDED", "MODIFIED")
                ):
                    yield dict(event["object"])
        except self._exceptions as exc:
            raise _api_error(exc, f"watching {plural} in {namespace}") from None
        finally:
            stream.stop()

    def logs(self, namespace: str, pod: str, container: str, since_seconds: int) -> str:
        response = self._call(
            lambda: self.core.read_namespaced_pod_log(
                pod, namespace, container=container, since_seconds=since_seconds, **self._opts()
            )
        )
        data = response.data
        return data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)

    def exec(
        self, namespace: str, pod: str, container: str, argv: Sequence[str], timeout_s: float
    ) -> ExecResult:
        from kubernetes.stream import stream

        try:
            with self._exec_open:
                ws = stream(
                    self.core.connect_get_namespaced_pod_exec,
                    pod,
                    namespace,
                    command=list(argv),
                    container=container,
                    stderr=True,
                    stdin=False,
                    stdout=True,
                    tty=False,
                    _preload_content=False,
                )
        except self._exceptions as exc:
            raise _api_error(exc, f"exec in pod {namespace}/{pod}") from None
        return collect_exec(ws, timeout_s)

    def add_ephemeral_container(self, namespace: str, pod: str, container: Obj) -> None:
        """`kubectl debug` without kubectl: the pods/ephemeralcontainers subresource, as a
        strategic merge patch (the client would otherwise pick JSON Patch for a dict)."""
        body = {"spec": {"ephemeralContainers": [container]}}
        self._json(
            lambda: self.core.patch_namespaced_pod_ephemeralcontainers(
                pod,
                namespace,
                body,
                _content_type="application/strategic-merge-patch+json",
                **self._opts(),
            )
        )

    def close(self) -> None:
        close = getattr(self.api_client, "close", None)
        if callable(close):
            close()

    # -- helpers --------------------------------------------------------------------------

    def _opts(self) -> dict[str, Any]:
        return {"_preload_content": False, "_request_timeout": self.REQUEST_TIMEOUT}

    def _call(self, call: Any) -> Any:
        try:
            return call()
        except self._exceptions as exc:
            raise _api_error(exc, "Kubernetes API call") from None
        except OSError as exc:  # urllib3 wraps most, but not all, transport errors
            raise BackendError(f"the Kubernetes API server is unreachable: {exc}") from None
        except Exception as exc:
            if type(exc).__module__.startswith("urllib3"):
                raise BackendError(f"the Kubernetes API server is unreachable: {exc}") from None
            raise

    def _json(self, call: Any) -> Obj:
        response = self._call(call)
        data = getattr(response, "data", response)
        parsed = (json.loads(data) if data else {}) if isinstance(data, bytes | str) else data
        return dict(parsed) if isinstance(parsed, Mapping) else {}


class ApiError(BackendError):
    """A Kubernetes API call that the server refused; `status` is the HTTP status."""

    def __init__(self, message: str, status: int | None) -> None:
        super().__init__(message)
        self.status = status


def _api_error(exc: Any, what: str) -> ApiError:
    status = getattr(exc, "status", None)
    body = getattr(exc, "body", None) or ""
    message = ""
    try:
        message = str(json.loads(body).get("message", ""))
    except (ValueError, AttributeError, TypeError):
        message = str(body)[:300]
    reason = getattr(exc, "reason", "") or ""
    return ApiError(f"{what} failed: HTTP {status} {reason}: {message}".rstrip(": "), status)


def collect_exec(ws: Any, timeout_s: float) -> ExecResult:
    """Run a kubernetes.stream WSClient to completion (or the timeout) and read it out."""
    try:
        ws.run_forever(timeout=timeout_s)
        still_open = ws.is_open()
        stdout, stderr = ws.read_stdout(timeout=0), ws.read_stderr(timeout=0)
        code: int | None = None
        if not still_open:
            try:
                code = ws.returncode
            except Exception:  # an error channel that is not an exit status
                code = -1
    finally:
        ws.close()
    return ExecResult(stdout or "", stderr or "", code)


_EXTRA_HINT = (
    "the kind backend needs the `kind` extra (the `kubernetes` client and pytest-kind): "
    "pip install 'meshlab[kind]', or run the lab through nox (`nox -s lab-2-traffic -- "
    "--backend kind`), which installs it"
)
