"""Where a request starts on a real cluster (`ProbeRequest.origin`), and how meshlab gets a
client there. Each origin is a place the probe script runs (one exec per batch) plus the
proxy whose access log shows the origin's own call:

    mesh        the probe pod `meshlab-probe` in the run namespace, with a sidecar; its
                sidecar logs the call.
    no-sidecar  the pod `meshlab-probe-plain`, labelled `sidecar.istio.io/inject: "false"`
                (pkg/kube/inject/inject.go: the label turns injection off for one pod in an
                injected namespace). No proxy of its own: the call is read from the sidecar
                of the pod that served it (its inbound line).
    browser     from the plain pod too (a browser is outside the mesh), to the real
                `istio-ingressgateway` Service in istio-system at the URL's port, with the
                URL's host in `Host` and its path as typed. Inside the cluster rather than a
                port-forward: a port-forward pins one gateway pod and tunnels through the API
                server, while the course's NodePort, like a Service address, goes through
                kube-proxy to any gateway pod. The gateway logs the call; it makes up a new
                `x-request-id` (an edge proxy: `use_remote_address`, and no internal networks
                since Envoy 1.33; pilot/pkg/networking/core/gateway.go), so its line is found
                by the probe's User-Agent, `meshlab-probe/<id>`, and its new id is followed.
    workload    inside a pod of the named Deployment (or the named Pod): an ephemeral
                container (what `kubectl debug` adds) in that pod's network namespace, as
                UID 65532. istio-init's iptables send every outbound connection through the
                sidecar except those of UID 1337 (the proxy's own, by `-m owner --uid-owner`;
                tools/istio-iptables/pkg/capture/run.go), so
                the call leaves through the workload's sidecar with the workload's labels,
                namespace and identity. `kubectl exec -c istio-proxy ... curl` would bypass
                it (UID 1337), and a look-alike pod with the workload's labels would itself
                become an endpoint of the workload's Services and take some of its traffic.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Sequence

from meshlab.backends.base import PodInfo
from meshlab.backends.kind.accesslog import PROBE_POD, SIDECAR, TELEMETRY_NAME, LogSource
from meshlab.backends.kind.apply import Clock, Progress, Retarget, Waiter, pod_state
from meshlab.backends.kind.kube import Kube, Obj
from meshlab.errors import BackendError
from meshlab.mesh.names import CLIENT_LABELS, ISTIO_SYSTEM_NAMESPACE
from meshlab.mesh.request import Origin
from meshlab.records import dataclass

PROBE_CONTAINER = "probe"
PROBE_LABEL = "meshlab.io/probe"
PROBE_IMAGE = "python:3.13-alpine"  # a rolling tag: no digest could be looked up here
SCRIPT_DIR = "/meshlab"
SCRIPT_PATH = f"{SCRIPT_DIR}/probe.py"
PLAIN_PROBE_POD = "meshlab-probe-plain"
ORIGIN_CONTAINER = "meshlab-origin"
ORIGIN_UID = 65532  # anything but istio-proxy's 1337, whose traffic the sidecar skips
GATEWAY_SERVICE = "istio-ingressgateway"
GATEWAY_SELECTOR = "istio=ingressgateway"
COURSE_NODE_PORT = 31380  # the course's NodePort for the gateway's port 80 (mesh/gateways.py)
ORIGIN_TIMEOUT = 180.0
ORIGIN_POLL = 1.0
USER_AGENT = "meshlab-probe"  # as podscript.py sends it
SLEEP_FOREVER = ["python3", "-c", "import time\nwhile True: time.sleep(3600)"]


@dataclass(frozen=True)
class OriginPoint:
    """Where an origin's batches run and whose log shows its own call."""

    origin: Origin
    pod: str
    container: str
    argv: tuple[str, ...]  # the script's command line, before its sub-command
    proxies: tuple[LogSource, ...]  # the origin's proxy (none: it has no sidecar)
    address: str | None = None  # the pod's IP, for the callee's inbound line
    gateway_ports: tuple[tuple[int, int | None], ...] = ()  # browser: (port, nodePort)

    def gateway_port(self, port: int) -> int | None:
        """The gateway Service's port a browser's URL port reaches: that port, or the port
        whose nodePort it is, or port 80 for the course's NodePort 31380 (the cluster's own
        nodePort is random; the course's install pins 31380 for `http2` 80)."""
        for number, node_port in self.gateway_ports:
            if port in (number, node_port):
                return number
        known = {number for number, _ in self.gateway_ports}
        return 80 if port == COURSE_NODE_PORT and 80 in known else None

    via_user_agent: bool = False  # browser: the gateway replaces x-request-id


def probe_script() -> str:
    return (
        importlib.resources.files("meshlab.backends.kind")
        .joinpath("podscript.py")
        .read_text(encoding="utf-8")
    )


def probe_objects(namespace: str) -> list[Obj]:
    """The probe: its script (ConfigMap), the access log of every sidecar in the run
    namespace, both directions (Telemetry; no `match` is CLIENT_AND_SERVER), its pod."""
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": PROBE_POD, "namespace": namespace},
            "data": {"probe.py": probe_script()},
        },
        {
            "apiVersion": "telemetry.istio.io/v1",
            "kind": "Telemetry",
            "metadata": {"name": TELEMETRY_NAME, "namespace": namespace},
            "spec": {"accessLogging": [{"providers": [{"name": "envoy"}]}]},
        },
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": PROBE_POD,
                "namespace": namespace,
                "labels": dict(CLIENT_LABELS),  # PROBE_LABEL: "true"
                "annotations": {
                    "proxy.istio.io/config": '{"holdApplicationUntilProxyStarts": true}'
                },
            },
            "spec": _probe_spec(),
        },
    ]


def plain_probe_pod(namespace: str) -> Obj:
    """The probe without a sidecar: the same script, `sidecar.istio.io/inject: "false"`."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": PLAIN_PROBE_POD,
            "namespace": namespace,
            "labels": {PROBE_LABEL: "plain", "sidecar.istio.io/inject": "false"},
        },
        "spec": _probe_spec(),
    }


def origin_container() -> Obj:
    """The ephemeral container added to a workload's pod. It cannot mount the probe's
    ConfigMap (an ephemeral container only sees the pod's own volumes), so each batch
    passes the script on the command line (`python3 -c`)."""
    return {
        "name": ORIGIN_CONTAINER,
        "image": PROBE_IMAGE,
        "command": SLEEP_FOREVER,
        "securityContext": {
            "runAsUser": ORIGIN_UID,
            "runAsGroup": ORIGIN_UID,
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},  # admitted by `restricted` too
        },
    }


def has_sidecar(pod: Obj) -> bool:
    """istio-proxy as a container, or as a native sidecar (an init container)."""
    spec = pod.get("spec") or {}
    containers = [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]
    return any(c.get("name") == SIDECAR for c in containers)


def pod_info(pod: Obj) -> PodInfo:
    meta, spec, status = (pod.get(k) or {} for k in ("metadata", "spec", "status"))
    images = [c.get("image", "") for c in spec.get("containers") or [] if c.get("name") != SIDECAR]
    detail = f"{status.get('phase', '?')}, IP {status.get('podIP', '-')}"
    if spec.get("nodeName"):
        detail += f", node {spec['nodeName']}"
    return PodInfo(
        meta.get("name", "?"), dict(meta.get("labels") or {}), images[0] if images else "", detail
    )


def pod_ips(pod: Obj) -> list[str]:
    status = pod.get("status") or {}
    ips = [str(p.get("ip")) for p in status.get("podIPs") or [] if p.get("ip")]
    if status.get("podIP") and status["podIP"] not in ips:
        ips.append(str(status["podIP"]))
    return ips


def host_ip(upstream_host: str) -> str:
    """`10.244.0.7:8080` -> `10.244.0.7`; `[fd00::7]:8080` -> `fd00::7`."""
    if upstream_host.startswith("["):
        return upstream_host[1:].split("]", 1)[0]
    return upstream_host.rsplit(":", 1)[0] if upstream_host.count(":") == 1 else upstream_host


def pod_ip(pod: Obj) -> str | None:
    ip = (pod.get("status") or {}).get("podIP")
    return str(ip) if ip else None


class Origins:
    """The origins of one deployed lab, each made ready the first time a request uses it."""

    def __init__(
        self,
        kube: Kube,
        namespace: str,
        retarget: Retarget,
        script: str,
        clock: Clock,
        progress: Progress,
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.retarget = retarget
        self.script = script
        self.clock = clock
        self.progress = progress
        self._points: dict[Origin, OriginPoint] = {}
        self._plain = False

    def point(self, origin: Origin) -> OriginPoint:
        if origin not in self._points:
            self._points[origin] = self._make(origin)
        return self._points[origin]

    def _make(self, origin: Origin) -> OriginPoint:
        script = ("python3", SCRIPT_PATH)
        if origin.kind == "mesh":
            proxy = LogSource(self.namespace, PROBE_POD)
            return OriginPoint(origin, PROBE_POD, PROBE_CONTAINER, script, (proxy,))
        if origin.kind == "no-sidecar":
            address = self._plain_probe()
            return OriginPoint(origin, PLAIN_PROBE_POD, PROBE_CONTAINER, script, (), address)
        if origin.kind == "browser":
            ports = self._gateway_ports()
            address = self._plain_probe()
            return OriginPoint(
                origin,
                PLAIN_PROBE_POD,
                PROBE_CONTAINER,
                script,
                self._gateway_proxies(),
                address,
                gateway_ports=ports,
                via_user_agent=True,
            )
        return self._workload(origin)

    # -- no sidecar ---------------------------------------------------------------------

    def _plain_probe(self) -> str:
        if not self._plain:
            self.progress(f"starting {PLAIN_PROBE_POD}, a client without a sidecar")
            self.kube.create(plain_probe_pod(self.namespace), self.namespace)
            self._plain = True
        Waiter(self.kube, self.namespace, self.progress, self.clock).pods(
            [PLAIN_PROBE_POD], ORIGIN_TIMEOUT
        )
        pod = self.kube.get("v1", "Pod", self.namespace, PLAIN_PROBE_POD) or {}
        if has_sidecar(pod):
            raise BackendError(
                f"pod {self.namespace}/{PLAIN_PROBE_POD} got a sidecar although it is labelled "
                '`sidecar.istio.io/inject: "false"`; is a webhook forcing injection?'
            )
        address = pod_ip(pod)
        if address is None:
            raise BackendError(f"pod {self.namespace}/{PLAIN_PROBE_POD} has no IP")
        return address

    # -- the ingress gateway ------------------------------------------------------------

    def _gateway_ports(self) -> tuple[tuple[int, int | None], ...]:
        service = self.kube.get("v1", "Service", ISTIO_SYSTEM_NAMESPACE, GATEWAY_SERVICE)
        if service is None:
            raise BackendError(
                f"`from: browser` goes through the Service {ISTIO_SYSTEM_NAMESPACE}/"
                f"{GATEWAY_SERVICE}, and this cluster has none; install Istio's ingress "
                "gateway (`istioctl install --set profile=default -y`)"
            )
        ports = (service.get("spec") or {}).get("ports") or []
        return tuple(
            (int(p["port"]), p["nodePort"] if isinstance(p.get("nodePort"), int) else None)
            for p in ports
            if isinstance(p.get("port"), int)
        )

    def _gateway_proxies(self) -> tuple[LogSource, ...]:
        pods = self.kube.list("v1", "Pod", ISTIO_SYSTEM_NAMESPACE, label_selector=GATEWAY_SELECTOR)
        running = sorted(
            str((p.get("metadata") or {}).get("name"))
            for p in pods
            if (p.get("status") or {}).get("phase") == "Running"
        )
        if not running:
            raise BackendError(
                f"no running pod of the ingress gateway ({GATEWAY_SELECTOR}) in "
                f"{ISTIO_SYSTEM_NAMESPACE}"
            )
        return tuple(LogSource(ISTIO_SYSTEM_NAMESPACE, name) for name in running)

    # -- a workload's pod ---------------------------------------------------------------

    def _workload(self, origin: Origin) -> OriginPoint:
        pod = self.workload_pod(str(origin.workload))
        name = str(pod["metadata"]["name"])
        statuses = (pod.get("status") or {}).get("ephemeralContainerStatuses") or []
        if not any(s.get("name") == ORIGIN_CONTAINER for s in statuses):
            self.progress(f"adding the container {ORIGIN_CONTAINER} to pod {name}")
            self.kube.add_ephemeral_container(self.namespace, name, origin_container())
        pod = self._wait_running(name)
        proxies = (LogSource(self.namespace, name),) if has_sidecar(pod) else ()
        argv = ("python3", "-c", self.script)
        return OriginPoint(origin, name, ORIGIN_CONTAINER, argv, proxies, pod_ip(pod))

    def workload_pod(self, workload: str) -> Obj:
        """A Ready pod of the Deployment named `workload` (the first by name), else the Pod
        of that name. `ns/name` must name the lab's own namespace."""
        namespace, _, name = workload.rpartition("/")
        if namespace and self.retarget.namespace(namespace) != self.namespace:
            raise BackendError(
                f"`from: {{workload: {workload}}}`: the kind backend runs the whole lab in one "
                f"namespace ({self.retarget.lab_namespace!r}); {namespace!r} is another one"
            )
        deployment = self.kube.get("apps/v1", "Deployment", self.namespace, name)
        if deployment is not None:
            selector = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels")
            wanted = dict(selector or {})
            pods = [
                p
                for p in self.kube.list("v1", "Pod", self.namespace)
                if wanted
                and all(
                    ((p.get("metadata") or {}).get("labels") or {}).get(k) == v
                    for k, v in wanted.items()
                )
                and pod_state(p)[0]
            ]
            if not pods:
                raise BackendError(f"`from: {{workload: {workload}}}`: no pod of it is Ready")
            return min(pods, key=lambda p: str(p["metadata"]["name"]))
        pod = self.kube.get("v1", "Pod", self.namespace, name)
        if pod is None:
            raise BackendError(
                f"`from: {{workload: {workload}}}`: the lab has no Deployment or Pod named {name!r}"
            )
        return pod

    def _wait_running(self, name: str) -> Obj:
        deadline = self.clock.monotonic() + ORIGIN_TIMEOUT
        while True:
            pod = self.kube.get("v1", "Pod", self.namespace, name) or {}
            statuses = (pod.get("status") or {}).get("ephemeralContainerStatuses") or []
            mine = [s.get("state") or {} for s in statuses if s.get("name") == ORIGIN_CONTAINER]
            state = mine[0] if mine else {}
            if "running" in state:
                return pod
            if "terminated" in state:
                raise BackendError(
                    f"the container {ORIGIN_CONTAINER} in pod {self.namespace}/{name} ended: "
                    f"{state['terminated'].get('reason', '?')}"
                )
            if self.clock.monotonic() >= deadline:
                waiting = (state.get("waiting") or {}).get("reason", "not started")
                raise BackendError(
                    f"the container {ORIGIN_CONTAINER} in pod {self.namespace}/{name} did not "
                    f"start within {ORIGIN_TIMEOUT:.0f} s ({waiting})"
                )
            self.clock.sleep(ORIGIN_POLL)


def gateway_address(port: int) -> str:
    return f"{GATEWAY_SERVICE}.{ISTIO_SYSTEM_NAMESPACE}.svc.cluster.local:{port}"


def lab_pods(pods: Sequence[Obj]) -> list[Obj]:
    """The lab's pods: meshlab's own probes carry PROBE_LABEL."""
    return [p for p in pods if PROBE_LABEL not in ((p.get("metadata") or {}).get("labels") or {})]


def _probe_spec() -> Obj:
    """Both probes' pod spec: the probe image asleep, the probe script mounted from the
    ConfigMap; they differ only in their labels (and so in the sidecar)."""
    return {
        "terminationGracePeriodSeconds": 1,
        "containers": [
            {
                "name": PROBE_CONTAINER,
                "image": PROBE_IMAGE,
                "command": SLEEP_FOREVER,
                "volumeMounts": [{"name": "script", "mountPath": SCRIPT_DIR, "readOnly": True}],
            }
        ],
        "volumes": [{"name": "script", "configMap": {"name": PROBE_POD}}],
    }
