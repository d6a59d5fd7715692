"""Test doubles for the kind backend's boundaries, all writing to one `Events` log so a test
can assert the exact order of commands and API calls, teardown included.

* FakeRunner: the commands (docker, kind, istioctl) by exact argv, with scripted answers.
* FakeSubprocess: pytest-kind's `subprocess` module, routed to the same FakeRunner.
* FakeKube: the Kubernetes API at the `Kube` level, with a tiny controller (Deployments
  roll out, pods get IPs and turn Ready) and a tiny mesh behind the probes: requests go to
  pods by the version weights the test sets, then along the calls the test lists, and every
  proxy on the way gets its access-log lines (outbound at the caller, inbound at the callee),
  exactly as Istio writes them with accessLogEncoding JSON; the ingress gateway replaces the
  request id as an edge proxy does. Optionally a hash cookie (Envoy sets it, the pod follows
  it; the client's jar is podscript.py's own code) and a connection pool that answers 503 UO
  while more batches run at once than it admits.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
import shlex
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshlab.backends.kind import podscript
from meshlab.backends.kind.kube import ApiError, ExecResult, Obj
from meshlab.backends.kind.tools import Completed


class Events(list[str]):
    """The ordered log of everything the fakes were asked to do."""

    def matching(self, prefix: str) -> list[str]:
        return [e for e in self if e.startswith(prefix)]


Answer = Completed | Callable[[tuple[str, ...]], Completed]


class FakeRunner:
    """Records each command; answers by the first matching rule (argv[1:] prefix)."""

    def __init__(self, events: Events) -> None:
        self.events = events
        self.calls: list[tuple[str, ...]] = []
        self.rules: list[tuple[tuple[str, ...], Answer]] = []
        self.clusters: list[str] = []  # what `kind get clusters` lists
        self.interrupt_on: tuple[str, ...] | None = None

    def on(self, *args: str, returncode: int = 0, stdout: str = "", stderr: str = "") -> None:
        self.rules.insert(0, (args, Completed((), returncode, stdout, stderr)))

    def run(
        self, argv: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None
    ) -> Completed:
        args = tuple(str(a) for a in argv)
        self.calls.append(args)
        self.events.append(f"run: {shlex.join([Path(args[0]).name, *args[1:]])}")
        if (
            self.interrupt_on is not None
            and args[1:][: len(self.interrupt_on)] == self.interrupt_on
        ):
            raise KeyboardInterrupt
        for prefix, answer in self.rules:
            if args[1:][: len(prefix)] == prefix:
                done = answer(args) if callable(answer) else answer
                return Completed(args, done.returncode, done.stdout, done.stderr)
        return self._default(args)

    def _default(self, args: tuple[str, ...]) -> Completed:
        tool, rest = Path(args[0]).name, args[1:]
        if tool == "docker" and rest[:1] == ("info",):
            return Completed(args, 0, "29.1.0\n")
        if tool == "kind" and rest == ("get", "clusters"):
            return Completed(args, 0, "".join(f"{c}\n" for c in self.clusters))
        if tool == "kind" and rest[:2] in (("create", "cluster"), ("export", "kubeconfig")):
            name = next(a.split("=", 1)[1] for a in rest if a.startswith("--name="))
            if rest[0] == "create":
                self.clusters.append(name)
            kubeconfig = next(a.split("=", 1)[1] for a in rest if a.startswith("--kubeconfig="))
            Path(kubeconfig).write_text(KUBECONFIG.format(name=name))  # as kind writes one
            return Completed(args, 0)
        if tool == "kind" and rest[:2] == ("delete", "cluster"):
            name = next(a.split("=", 1)[1] for a in rest if a.startswith("--name="))
            if name in self.clusters:
                self.clusters.remove(name)
            return Completed(args, 0)
        if tool == "kind" and rest[:1] == ("version",):
            return Completed(args, 0, "kind v0.32.0 go1.25.3 linux/amd64\n")
        if tool == "istioctl" and rest[:1] == ("version",):
            return Completed(args, 0, "client version: 1.31.1\n")
        return Completed(args, 0)


KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- cluster: {{server: "https://127.0.0.1:40123", insecure-skip-tls-verify: true}}
  name: kind-{name}
contexts:
- context: {{cluster: kind-{name}, user: kind-{name}}}
  name: kind-{name}
current-context: kind-{name}
users:
- name: kind-{name}
  user: {{token: not-a-real-token}}
"""


class FakeSubprocess:
    """Stands in for the `subprocess` module inside pytest_kind.cluster."""

    CalledProcessError = subprocess.CalledProcessError
    PIPE = subprocess.PIPE

    def __init__(self, runner: FakeRunner) -> None:
        self.runner = runner

    def check_output(self, cmd: Sequence[Any], **kwargs: Any) -> str:
        done = self.runner.run(cmd, timeout=60)
        if done.returncode != 0:
            raise subprocess.CalledProcessError(done.returncode, list(cmd), done.stdout)
        return done.stdout

    def run(self, cmd: Sequence[Any], check: bool = False, **kwargs: Any) -> Completed:
        done = self.runner.run(cmd, timeout=600)
        if check and done.returncode != 0:
            raise subprocess.CalledProcessError(done.returncode, list(cmd))
        return done

    def Popen(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("blocked: pytest-kind tried to start a process")


# --- the cluster -------------------------------------------------------------------------


def _name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name"))


@dataclass
class FakeMeshBehaviour:
    """How the fake mesh answers the probe: version weights, else a fixed failure."""

    weights: dict[str, float] = field(default_factory=lambda: {"safe": 0.9, "risky": 0.1})
    status: int = 200
    fail_with: str | None = None  # "HTTP 503 UH": no pod; "error: ...": no response
    body: str = '{"name": "Pam Parry", "photo": "x"}'
    seed: int = 7
    closed_batches: int = 0  # the first batches find the apps not listening yet (URX,UF)
    target_app: str = "staff-service"  # the app of the depth-1 pod (the version by weights)
    target_host: str = "fleetman-staff-service:8080"  # the authority as sent
    target_service: str = "fleetman-staff-service"  # the Service its cluster names
    calls: list[str] = field(default_factory=list)  # apps called below, in turn (app names)
    propagate: bool = True  # False: the apps make up a new x-request-id for their calls
    fail_last_call: str | None = None  # "503 FI": the last of `calls` answered by no pod
    unrouted_batches: int = 0  # browser: the gateway's first batches have no route (404 NR)
    hash_cookie: str | None = None  # a cookie `ttl` hash: Envoy sets it, the pod follows it
    pool: int | None = None  # batches at once the pool admits; beyond it: 503 UO, no pod
    egress_to: str | None = None  # an external host, reached through the egress gateway


class FakeKube:
    """The Kubernetes API as `Kube`: objects in memory, a controller, a mesh, a log."""

    def __init__(self, events: Events) -> None:
        self.events = events
        self.objects: dict[tuple[str, str | None, str], Obj] = {}
        self.istiod_version: str | None = "1.31.1"
        self.gateway = False
        self.egress = False  # an istio-egressgateway runs in istio-system
        self.ready = True  # Deployments roll out and pods turn Ready at once
        self.sync_after = 0  # `envoy` summaries that still show the old routes
        self.mesh = FakeMeshBehaviour()
        self.log_delay = 0  # reads of the sidecar log before new lines show up
        self.drop_log_lines = False
        self.exec_calls: list[list[str]] = []
        self.batches_seen = 0
        self.interrupt_in_watch = False
        self.closed = False
        self._rng = random.Random(self.mesh.seed)
        self._next_ip = 10
        # pod -> (visible from read #, written in batch #, line)
        self._logs: dict[str, list[tuple[int, int, str]]] = {}
        self._log_reads: dict[str, int] = {}
        self._tick = 0  # START_TIME of the next line
        self.ephemeral: list[tuple[str, str, Obj]] = []  # (namespace, pod, container)
        self._envoy_reads = 0
        self.refuse: dict[str, ApiError] = {}  # kind -> refusal on create
        self.exec_pause = 0.0  # real seconds an exec takes, so threads' execs overlap
        self.since_window = 1  # batches before the newest one a log read still covers
        self.in_flight = 0
        self.peak_in_flight = 0
        self._exec_lock = threading.Lock()

    # -- Kube ---------------------------------------------------------------------------

    def server_version(self) -> str:
        self.events.append("api: version")
        return "v1.36.1"

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> Obj | None:
        if (kind, namespace, name) == ("Deployment", "istio-system", "istiod"):
            if self.istiod_version is None:
                return None
            image = f"docker.io/istio/pilot:{self.istiod_version}-distroless"
            return {"spec": {"template": {"spec": {"containers": [{"image": image}]}}}}
        if (kind, namespace, name) == ("Deployment", "istio-system", "istio-ingressgateway"):
            return {"metadata": {"name": name}} if self.gateway else None
        if (kind, namespace, name) == ("Deployment", "istio-system", "istio-egressgateway"):
            return {"metadata": {"name": name}} if self.egress else None
        if (kind, namespace, name) == ("Service", "istio-system", "istio-ingressgateway"):
            ports = [  # istioctl's default profile: a LoadBalancer, nodePorts picked at random
                {"name": "status-port", "port": 15021, "nodePort": 31874},
                {"name": "http2", "port": 80, "nodePort": 30080},
            ]
            return {"metadata": {"name": name}, "spec": {"ports": ports}} if self.gateway else None
        found = self.objects.get((kind, namespace, name))
        return copy.deepcopy(found) if found else None

    def list(
        self, api_version: str, kind: str, namespace: str | None, label_selector: str = ""
    ) -> list[Obj]:
        wanted = dict(p.split("=", 1) for p in label_selector.split(",") if p)
        if (kind, namespace, wanted) == ("Pod", "istio-system", {"istio": "ingressgateway"}):
            return [self.GATEWAY_POD] if self.gateway else []
        if (kind, namespace, wanted) == ("Pod", "istio-system", {"istio": "egressgateway"}):
            return [copy.deepcopy(self.EGRESS_POD)] if self.egress else []
        out = []
        for (k, ns, _), obj in self.objects.items():
            labels = (obj.get("metadata") or {}).get("labels") or {}
            in_scope = k == kind and (namespace is None or ns == namespace)
            if in_scope and all(labels.get(key) == value for key, value in wanted.items()):
                out.append(copy.deepcopy(obj))
        return out

    def create(self, obj: Obj, namespace: str | None) -> None:
        kind = str(obj["kind"])
        self.events.append(f"create: {kind} {namespace or ''}/{_name(obj)}".replace(" /", " "))
        if kind in self.refuse:
            raise self.refuse[kind]
        stored = copy.deepcopy(obj)
        ns = None if kind == "Namespace" else namespace
        self.objects[(kind, ns, _name(obj))] = stored
        if kind == "Deployment":
            self._roll_out(stored, str(namespace))
        elif kind == "Pod":
            self._start_pod(stored, str(namespace))
        elif kind == "Event":
            pass

    def delete_namespace(self, name: str) -> None:
        self.events.append(f"delete: Namespace {name}")
        self.objects = {k: v for k, v in self.objects.items() if k[1] != name and k[2:] != (name,)}
        self.objects.pop(("Namespace", None, name), None)

    def watch(self, api_version: str, kind: str, namespace: str, timeout_s: int) -> Iterator[Obj]:
        self.events.append(f"watch: {kind} {namespace}")
        if self.interrupt_in_watch:
            raise KeyboardInterrupt
        return iter(self.list(api_version, kind, namespace))

    def logs(self, namespace: str, pod: str, container: str, since_seconds: int) -> str:
        reads = self._log_reads[pod] = self._log_reads.get(pod, 0) + 1
        # `since_seconds` covers the batch being read (and the one before, at most), as the
        # backend asks on a real cluster (`since_window` more while batches run at once);
        # 0 (a test's own look) is the whole log
        oldest = self.batches_seen - self.since_window if since_seconds > 0 else 0
        visible = [
            line
            for read, batch, line in self._logs.get(pod, [])
            if read <= reads and batch >= oldest
        ]
        return "".join(f"{line}\n" for line in visible)

    def add_ephemeral_container(self, namespace: str, pod: str, container: Obj) -> None:
        self.events.append(f"api: ephemeral container {container['name']} in {namespace}/{pod}")
        self.ephemeral.append((namespace, pod, copy.deepcopy(container)))
        obj = self.objects[("Pod", namespace, pod)]
        statuses = obj.setdefault("status", {}).setdefault("ephemeralContainerStatuses", [])
        statuses.append({"name": container["name"], "state": {"running": {}}})

    def exec(
        self, namespace: str, pod: str, container: str, argv: Sequence[str], timeout_s: float
    ) -> ExecResult:
        self.exec_calls.append(list(argv))
        self.events.append(f"exec: {pod} {' '.join(argv[:3] if argv[1] != '-c' else argv[:2])}")
        args = list(argv[3:]) if argv[1] == "-c" else list(argv[2:])
        if args[:1] == ["batch"] and (argv[1] == "-c" or argv[1] == "/meshlab/probe.py"):
            with self._exec_lock:
                self.in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            try:
                time.sleep(self.exec_pause)
                with self._exec_lock:
                    return self._batch(namespace, pod, json.loads(args[1]))
            finally:
                with self._exec_lock:
                    self.in_flight -= 1
        if list(argv[:3]) == ["python3", "/meshlab/probe.py", "envoy"]:
            self._envoy_reads += 1
            return ExecResult(json.dumps(self._envoy_summary(namespace)), "", 0)
        return ExecResult("", f"unknown command {argv}", 1)

    def close(self) -> None:
        self.closed = True
        self.events.append("api: close")

    # -- the controller -----------------------------------------------------------------

    def _roll_out(self, deployment: Obj, namespace: str) -> None:
        replicas = int(deployment["spec"].get("replicas", 1))
        deployment["metadata"]["generation"] = 1
        ready = replicas if self.ready else 0
        deployment["status"] = {
            "observedGeneration": 1,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "availableReplicas": ready,
        }
        template = deployment["spec"]["template"]
        for index in range(replicas):
            pod = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": f"{_name(deployment)}-7d9f8-{index:05d}",
                    "labels": {**template["metadata"]["labels"], "pod-template-hash": "7d9f8"},
                },
                "spec": copy.deepcopy(template["spec"]),
            }
            self._start_pod(pod, namespace)
            self.objects[("Pod", namespace, _name(pod))] = pod

    def _start_pod(self, pod: Obj, namespace: str) -> None:
        self._next_ip += 1
        containers = pod["spec"].setdefault("containers", [])
        labels = (pod.get("metadata") or {}).get("labels") or {}
        if labels.get("sidecar.istio.io/inject") != "false":
            containers.append({"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.31.1"})
        if self.ready:
            pod["status"] = {
                "phase": "Running",
                "podIP": f"10.244.0.{self._next_ip}",
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [{"name": c["name"], "ready": True} for c in containers],
            }
        else:
            pod["status"] = {
                "phase": "Pending",
                "containerStatuses": [
                    {
                        "name": containers[0]["name"],
                        "ready": False,
                        "state": {"waiting": {"reason": "ImagePullBackOff", "message": "pull"}},
                    }
                ],
            }

    # -- the mesh behind the probe --------------------------------------------------------

    GATEWAY_POD: Obj = {  # noqa: RUF012 (read only)
        "metadata": {"name": "istio-ingressgateway-5f8d-x2", "labels": {"istio": "ingressgateway"}},
        "status": {"phase": "Running", "podIP": "10.244.0.3"},
    }

    EGRESS_POD: Obj = {  # noqa: RUF012 (read only)
        "metadata": {
            "name": "istio-egressgateway-6c7d-k1",
            "labels": {"istio": "egressgateway", "app": "istio-egressgateway"},
        },
        "spec": {
            "containers": [{"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.31.1"}]
        },
        "status": {"phase": "Running", "podIP": "10.244.0.4"},
    }

    def _pods(self, namespace: str) -> list[Obj]:
        return [
            o
            for (k, ns, name), o in self.objects.items()
            if k == "Pod" and ns == namespace and "meshlab.io/probe" not in o["metadata"]["labels"]
        ]

    def _pod_of(self, namespace: str, app: str, version: str | None = None) -> Obj:
        return next(
            p
            for p in self._pods(namespace)
            if p["metadata"]["labels"].get("app") == app
            and (version is None or p["metadata"]["labels"].get("version") == version)
        )

    def _log(self, pod: str, visible_from: int, **fields: Any) -> None:
        self._tick += 1
        line = {
            "start_time": f"2026-12-01T10:00:00.{self._tick:06d}Z",
            "method": "GET",
            "protocol": "HTTP/1.1",
            "user_agent": "meshlab-probe",
            **fields,
        }
        self._logs.setdefault(pod, []).append((visible_from, self.batches_seen, json.dumps(line)))

    def _ip(self, namespace: str, pod: str) -> str:
        return str(self.objects[("Pod", namespace, pod)]["status"]["podIP"])

    def _batch(self, namespace: str, at: str, spec: Mapping[str, Any]) -> ExecResult:
        lines = []
        behaviour = self.mesh
        self.batches_seen += 1
        starting = self.batches_seen <= behaviour.closed_batches
        # `connect` elsewhere: an external host's stand-in
        browser = "istio-ingressgateway" in str(spec.get("connect"))
        unrouted = browser and self.batches_seen <= behaviour.unrouted_batches
        plain = at == "meshlab-probe-plain"
        overflowing = behaviour.pool is not None and self.in_flight > behaviour.pool
        jar = dict(spec["jar"]) if isinstance(spec.get("jar"), dict) else None
        count = int(spec["count"])
        for index in range(count):
            rid = f"{spec['prefix']}{index}"
            set_cookie = None
            if behaviour.fail_with and behaviour.fail_with.startswith("error:"):
                lines.append({"rid": rid, "status": None, "error": behaviour.fail_with[7:]})
                continue
            # the origin's proxy: the probe's or the workload pod's sidecar, the gateway, none
            proxy = "istio-ingressgateway-5f8d-x2" if browser else None if plain else at
            chain_id = f"gw-{rid}" if browser else rid
            if behaviour.egress_to and proxy is not None:
                lines.append(self._via_egress(namespace, proxy, spec, rid, behaviour.egress_to))
                continue
            status, flags, callee = behaviour.status, "-", None
            if behaviour.fail_with:
                status, flags = int(behaviour.fail_with.split()[1]), behaviour.fail_with.split()[2]
            elif unrouted:
                status, flags = 404, "NR"
            elif overflowing:
                status, flags = 503, "UO"
            elif behaviour.hash_cookie is not None:
                callee, set_cookie = self._hashed(namespace, behaviour, spec, jar, rid)
            else:
                version = self._rng.choices(
                    list(behaviour.weights), list(behaviour.weights.values())
                )[0]
                callee = self._pod_of(namespace, behaviour.target_app, version)
            served = callee is not None and not starting  # the app answered
            if starting:
                status, flags = 503, "URX,UF"
            body = behaviour.body if status < 500 else "upstream connect error"
            headers = {"server": "envoy", "x-envoy-upstream-service-time": "1"}
            if set_cookie is not None:
                headers["set-cookie"] = set_cookie
                if jar is not None:  # the script's own jar code keeps it
                    podscript.take_cookies(jar, [set_cookie])
            line = {
                "rid": rid,
                "status": status,
                "body": body,
                "headers": headers,
                "seconds": 0.002,
            }
            if jar is not None and index == count - 1:
                line["jar"] = dict(jar)
            lines.append(line)
            if self.drop_log_lines:
                continue
            service = behaviour.target_service
            cluster = None
            if callee is not None:
                subset = callee["metadata"]["labels"].get("version", "")
                cluster = f"outbound|8080|{subset}|{service}.{namespace}.svc.cluster.local"
            # the deeper calls end first, so they are logged before the call that made them
            if served:
                self._below(namespace, callee, chain_id if behaviour.propagate else None, rid)
            upstream = f"{callee['status']['podIP']}:8080" if callee is not None else None
            if proxy is not None:
                self._log(
                    proxy,
                    self._log_reads.get(proxy, 0) + 1 + self.log_delay,
                    request_id=chain_id,
                    response_code=str(status),
                    response_flags=flags,
                    upstream_host=upstream,
                    upstream_cluster=cluster,
                    authority=behaviour.target_host,
                    path="/driver/City%20Truck",
                    user_agent=f"meshlab-probe/{rid}" if browser else "meshlab-probe",
                    downstream_remote_address="10.244.0.2:40000",
                )
            if served and callee is not None:
                name = callee["metadata"]["name"]
                caller_ip = "10.244.0.3" if browser else self._ip(namespace, at)
                self._log(
                    name,
                    self._log_reads.get(name, 0) + 1 + self.log_delay,
                    request_id=chain_id,
                    response_code=str(status),
                    response_flags="-",
                    upstream_host=f"{callee['status']['podIP']}:8080",
                    upstream_cluster="inbound|8080||",
                    authority=behaviour.target_host,
                    path="/driver/City%20Truck",
                    downstream_remote_address=f"{caller_ip}:45678",
                )
        stdout = "".join(json.dumps(line) + "\n" for line in lines)
        return ExecResult(stdout, "", 0)

    def _via_egress(
        self, namespace: str, proxy: str, spec: Mapping[str, Any], rid: str, host: str
    ) -> dict[str, Any]:
        """The origin's sidecar calls the egress gateway; the gateway (an edge proxy: a new
        x-request-id, the User-Agent kept) calls the host's stand-in, which has no sidecar."""
        gateway = self.EGRESS_POD
        stand_in = next(
            p
            for p in self._pods(namespace)
            if p["metadata"]["labels"].get("meshlab.external") == host
        )
        agent = f"meshlab-probe/{rid}" if spec.get("agent_id") else "meshlab-probe"
        egress_fqdn = "istio-egressgateway.istio-system.svc.cluster.local"
        for pod, fields in (
            (
                gateway["metadata"]["name"],
                {
                    "request_id": f"egw-{rid}",
                    "upstream_host": f"{stand_in['status']['podIP']}:80",
                    "upstream_cluster": f"outbound|80||{host}",
                },
            ),
            (
                proxy,
                {
                    "request_id": rid,
                    "upstream_host": f"{gateway['status']['podIP']}:8080",
                    "upstream_cluster": f"outbound|80||{egress_fqdn}",
                },
            ),
        ):
            self._log(
                pod,
                self._log_reads.get(pod, 0) + 1,
                response_code="200",
                response_flags="-",
                authority=host,
                path="/",
                user_agent=agent,
                **fields,
            )
        body = f"external {host}"
        return {"rid": rid, "status": 200, "body": body, "headers": {}, "seconds": 0.002}

    def _hashed(
        self,
        namespace: str,
        behaviour: FakeMeshBehaviour,
        spec: Mapping[str, Any],
        jar: dict[str, str] | None,
        rid: str,
    ) -> tuple[Obj, str | None]:
        """The pod a hash cookie picks; with no cookie sent, Envoy makes one (ttl hashing)."""
        name = str(behaviour.hash_cookie)
        sent = podscript.cookie_header(jar or {}, (spec.get("headers") or {}).get("cookie"))
        cookies = dict(c.strip().split("=", 1) for c in (sent or "").split(";") if "=" in c)
        value, set_cookie = cookies.get(name), None
        if value is None:
            value = hashlib.sha256(rid.encode()).hexdigest()[:16]
            set_cookie = f'{name}="{value}"; Max-Age=60; HttpOnly'
        pods = sorted(
            (
                p
                for p in self._pods(namespace)
                if p["metadata"]["labels"].get("app") == behaviour.target_app
            ),
            key=lambda p: str(p["metadata"]["name"]),
        )
        pick = int(hashlib.sha256(value.strip('"').encode()).hexdigest(), 16) % len(pods)
        return pods[pick], set_cookie

    def _below(self, namespace: str, caller: Obj, chain_id: str | None, rid: str) -> None:
        """The calls `mesh.calls` lists, each made by the pod the previous one reached."""
        behaviour = self.mesh
        for index, app in enumerate(behaviour.calls):
            name = caller["metadata"]["name"]
            last = index == len(behaviour.calls) - 1
            callee = None if last and behaviour.fail_last_call else self._pod_of(namespace, app)
            status, flags = 200, "-"
            if callee is None and behaviour.fail_last_call:
                status, flags = (
                    int(behaviour.fail_last_call.split()[0]),
                    behaviour.fail_last_call.split()[1],
                )
            call_id = chain_id or f"made-up-{rid}-{index}"
            host = f"fleetman-{app}.{namespace}.svc.cluster.local"
            self._log(
                name,
                self._log_reads.get(name, 0) + 1 + self.log_delay,
                request_id=call_id,
                response_code=str(status),
                response_flags=flags,
                upstream_host=f"{callee['status']['podIP']}:8080" if callee else None,
                upstream_cluster=f"outbound|8080||{host}",
                authority=f"fleetman-{app}:8080",
                path=f"/{app}/x",
                user_agent="Java/17",
            )
            if callee is None:
                return
            self._log(
                callee["metadata"]["name"],
                self._log_reads.get(callee["metadata"]["name"], 0) + 1 + self.log_delay,
                request_id=call_id,
                response_code="200",
                response_flags="-",
                upstream_host=f"{callee['status']['podIP']}:8080",
                upstream_cluster="inbound|8080||",
                authority=f"fleetman-{app}:8080",
                path=f"/{app}/x",
                user_agent="Java/17",
                downstream_remote_address=f"{caller['status']['podIP']}:51000",
            )
            caller = callee

    def _envoy_summary(self, namespace: str) -> dict[str, Any]:
        fqdn = f"fleetman-staff-service.{namespace}.svc.cluster.local"
        pods = {v: [] for v in ("safe", "risky")}  # type: dict[str, list[str]]
        for pod in self._pods(namespace):
            version = pod["metadata"]["labels"].get("version")
            if (
                pod["metadata"]["labels"].get("app") == "staff-service"
                and version in pods
                and "podIP" in pod.get("status", {})
            ):
                pods[version].append(f"{pod['status']['podIP']}:8080")
        clusters = {f"outbound|8080|{v}|{fqdn}": hosts for v, hosts in pods.items()}
        clusters[f"outbound|8080||{fqdn}"] = pods["safe"] + pods["risky"]
        if self._envoy_reads <= self.sync_after:
            targets = [[f"outbound|8080||{fqdn}", None]]  # before the VirtualService arrived
        else:
            targets = [[f"outbound|8080|safe|{fqdn}", 90], [f"outbound|8080|risky|{fqdn}", 10]]
        vhosts = [
            {
                "name": f"{fqdn}:8080",
                "domains": [fqdn, "fleetman-staff-service", f"fleetman-staff-service.{namespace}"],
                "targets": targets,
            }
        ]
        for other in (
            "fleetman-api-gateway",
            "fleetman-position-tracker",
            "fleetman-vehicle-telemetry",
        ):
            ofqdn = f"{other}.{namespace}.svc.cluster.local"
            vhosts.append(
                {
                    "name": f"{ofqdn}:8080",
                    "domains": [ofqdn],
                    "targets": [[f"outbound|8080||{ofqdn}", None]],
                }
            )
            clusters[f"outbound|8080||{ofqdn}"] = ["10.244.0.99:8080"]
        webapp = f"fleetman-webapp.{namespace}.svc.cluster.local"
        clusters[f"outbound|80||{webapp}"] = ["10.244.0.98:80"]
        return {
            "clusters": clusters,
            "routes": {
                "8080": vhosts,
                "80": [
                    {
                        "name": f"{webapp}:80",
                        "domains": [webapp],
                        "targets": [[f"outbound|80||{webapp}", None]],
                    }
                ],
            },
        }


@dataclass
class FakeClock:
    """Time that moves only when the code sleeps (or a test says so)."""

    now: float = 1000.0
    slept: list[float] = field(default_factory=list)

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class FakeDownloader:
    def __init__(self, files: Mapping[str, bytes]) -> None:
        self.files = dict(files)
        self.fetched: list[str] = []

    def fetch(self, url: str) -> bytes:
        self.fetched.append(url)
        if url not in self.files:
            raise AssertionError(f"unexpected download {url}")
        return self.files[url]
