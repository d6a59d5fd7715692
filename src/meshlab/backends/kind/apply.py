"""A lab's objects into a fresh namespace: retarget, order, create, wait for rollouts.

Every lab runs in a namespace of its own (`meshlab-2-traffic-3f9a1c`), so two runs on a
shared cluster never meet. Objects written for the lab's namespace (usually `default`) are
moved there, and host names that spell the namespace out (`x.default.svc.cluster.local`)
follow them; everything else is applied as written, except `nodePort`, which is dropped so
that two runs can never collide on a node port (the probe never uses node ports).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from meshlab.backends.kind.kube import ApiError, Kube, Obj
from meshlab.backends.kind.mtls import is_mesh_wide, mesh_wide_mode, namespace_policy
from meshlab.errors import BackendError, BackendUnavailable
from meshlab.load.manifests import MESH_CONFIG, Resource
from meshlab.mesh import names
from meshlab.mesh.registry import EXPORT_TO_ANNOTATION
from meshlab.records import dataclass

Progress = Callable[[str], None]

# Kubernetes first (what Istio's objects point at), DestinationRules before the
# VirtualServices that name their subsets (Istio's "make before break"), the rest last.
APPLY_ORDER: dict[str, int] = {
    "Namespace": 0,
    "ConfigMap": 1,
    "Secret": 1,
    "ServiceAccount": 1,
    "Telemetry": 1,
    "Service": 2,
    "Deployment": 3,
    "Pod": 3,
    "DestinationRule": 4,
    "VirtualService": 5,
}
OTHERS = 6
_ISTIO_HOST_KEYS = names.HOST_KEYS
_ISTIO_HOST_LIST_KEYS = names.HOST_LIST_KEYS
_ISTIO_NAMESPACE_LIST_KEYS = names.NAMESPACE_LIST_KEYS
_ISTIO_NAMESPACE_KEYS = names.NAMESPACE_KEYS


def apply_order(objects: Iterable[Obj]) -> list[Obj]:
    """Stable: within one rank, objects keep the order of the lab's files."""
    return sorted(objects, key=lambda o: APPLY_ORDER.get(str(o.get("kind")), OTHERS))


@dataclass(frozen=True)
class Retarget:
    """Moves names from the lab's namespace to the run's, and back for reports."""

    lab_namespace: str
    run_namespace: str

    def host(self, host: str) -> str:
        """`x.default[.svc[.cluster.local]]` -> the same in the run namespace; `ns/host` too."""
        if "/" in host:
            namespace, _, rest = host.partition("/")
            return f"{self.namespace(namespace)}/{self.host(rest)}"
        spelled = names.split_service_host(host)
        if spelled is None or spelled[1] != self.lab_namespace:
            return host
        return f"{spelled[0]}.{self.run_namespace}{spelled[2]}"

    def namespace(self, namespace: str) -> str:
        return self.run_namespace if namespace == self.lab_namespace else namespace

    def url(self, url: str) -> str:
        parts = urlsplit(url)
        if not parts.hostname:
            return url
        netloc = self.host(parts.hostname) + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))

    def cluster(self, text: str) -> str:
        """A plan's FQDN or cluster name (`outbound|8080|risky|x.default.svc.cluster.local`)
        as it is called in the run namespace."""
        return text.replace(f".{self.lab_namespace}.svc.", f".{self.run_namespace}.svc.")

    def back(self, text: str) -> str:
        """A cluster name in the run namespace, told in the lab's (as reports and plans do)."""
        return text.replace(f".{self.run_namespace}.svc.", f".{self.lab_namespace}.svc.")


def raw_object(resource: Resource) -> Obj:
    """The object exactly as written in its YAML file (a `List` item included)."""
    data: Any = resource.document.data
    for key in resource.at:
        data = data[key]
    if not isinstance(data, Mapping):
        raise BackendError(f"{resource.ref}: expected a mapping at {resource.location}")
    return copy.deepcopy(dict(data))


def lab_objects(resources: Sequence[Resource], retarget: Retarget) -> list[Obj]:
    """The lab's objects for the run namespace, in apply order; refuses what cannot move."""
    objects = []
    mesh_mode = mesh_wide_mode(resources)
    for resource in resources:
        if is_mesh_wide(resource):
            continue  # applied as the run namespace's policy (kind/mtls.py)
        if resource.kind == "ConfigMap" and (resource.namespace, resource.name) == MESH_CONFIG:
            continue  # applied as the run namespace's Sidecar (kind/external.py)
        if resource.kind == "Namespace":
            if resource.name == retarget.lab_namespace:
                continue  # the run namespace replaces it
            raise BackendUnavailable(
                f"{resource.location}: the kind backend runs a lab in a namespace of its own "
                f"and cannot create other namespaces ({resource.ref})"
            )
        if resource.namespace != retarget.lab_namespace:
            raise BackendUnavailable(
                f"{resource.location}: {resource.ref} is in namespace {resource.namespace!r}; "
                f"the kind backend runs every object of a lab in one namespace of its own "
                f"(the lab's namespace is {retarget.lab_namespace!r})"
            )
        objects.append(_retargeted(raw_object(resource), retarget))
    if mesh_mode is not None:
        _mesh_mode_in_run_namespace(objects, mesh_mode, retarget)
    return apply_order(objects)


def _mesh_mode_in_run_namespace(objects: list[Obj], mode: str, retarget: Retarget) -> None:
    """The lab's namespace-wide policy inherits the mesh-wide mode when it sets none; with no
    such policy, the mode becomes one (kind/mtls.py says why)."""
    for obj in objects:
        spec = obj.get("spec")
        if obj.get("kind") == "PeerAuthentication" and isinstance(spec, dict):
            selector = spec.get("selector")
            if not (isinstance(selector, dict) and selector.get("matchLabels")):
                mtls = spec.setdefault("mtls", {})
                if isinstance(mtls, dict) and mtls.get("mode", "UNSET") == "UNSET":
                    mtls["mode"] = mode
                return
    policy = namespace_policy(mode, "meshlab-mesh-wide")
    objects.append(_retargeted(policy, retarget))


def _retargeted(obj: Obj, retarget: Retarget) -> Obj:
    obj.setdefault("metadata", {})["namespace"] = retarget.run_namespace
    kind = obj.get("kind")
    spec = obj.get("spec")
    if kind == "Service" and isinstance(spec, dict):
        for port in spec.get("ports") or []:
            if isinstance(port, dict):
                port.pop("nodePort", None)
        # names the embedded plan reads too: an ExternalName alias of a lab Service, and
        # the namespaces of the exportTo annotation
        if isinstance(spec.get("externalName"), str):
            spec["externalName"] = retarget.host(spec["externalName"])
        annotations = obj["metadata"].get("annotations")
        export_to = annotations.get(EXPORT_TO_ANNOTATION) if isinstance(annotations, dict) else None
        if isinstance(export_to, str) and annotations is not None:
            annotations[EXPORT_TO_ANNOTATION] = ",".join(
                retarget.namespace(ns.strip()) for ns in export_to.split(",")
            )
    if str(obj.get("apiVersion", "")).startswith("networking.istio.io/"):
        obj["spec"] = _retarget_istio(spec, retarget)
    return obj


def _retarget_istio(value: Any, retarget: Retarget) -> Any:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key in _ISTIO_HOST_KEYS and isinstance(item, str):
                out[key] = retarget.host(item)
            elif key in _ISTIO_HOST_LIST_KEYS and isinstance(item, list):
                out[key] = [retarget.host(h) if isinstance(h, str) else h for h in item]
            elif key in _ISTIO_NAMESPACE_LIST_KEYS and isinstance(item, list):
                out[key] = [retarget.namespace(n) if isinstance(n, str) else n for n in item]
            elif key in _ISTIO_NAMESPACE_KEYS and isinstance(item, str):
                out[key] = retarget.namespace(item)
            elif key in names.GATEWAY_LIST_KEYS and isinstance(item, list):
                out[key] = [retarget.host(g) if isinstance(g, str) else g for g in item]
            else:
                out[key] = _retarget_istio(item, retarget)
        return out
    if isinstance(value, list):
        return [_retarget_istio(v, retarget) for v in value]
    return value


def describe_object(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    return f"{obj.get('kind')} {meta.get('namespace', '')}/{meta.get('name', '?')}".replace(
        " /", " "
    )


def apply_objects(kube: Kube, objects: Sequence[Obj], namespace: str, progress: Progress) -> None:
    """Create each object in order; the first refusal stops the run with what the server said."""
    for obj in objects:
        try:
            kube.create(obj, namespace)
        except ApiError as exc:
            raise BackendError(f"the API server refused {describe_object(obj)}: {exc}") from None
    progress(f"applied {len(objects)} objects in namespace {namespace}")


# --- waiting -----------------------------------------------------------------------------

_STUCK_REASONS = {
    "ErrImagePull",
    "ImagePullBackOff",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "InvalidImageName",
    "RunContainerError",
}


def rollout_state(deployment: Obj) -> tuple[bool, str]:
    """(done, "2/3 available") the way `kubectl rollout status` decides it."""
    meta, spec, status = (deployment.get(k) or {} for k in ("metadata", "spec", "status"))
    wanted = int(spec.get("replicas", 1))
    observed = int(status.get("observedGeneration", 0)) >= int(meta.get("generation", 1))
    updated = int(status.get("updatedReplicas", 0))
    available = int(status.get("availableReplicas", 0))
    total = int(status.get("replicas", 0))
    done = observed and updated == wanted and available == wanted and total == wanted
    return done, f"{available}/{wanted} available"


def pod_state(pod: Obj) -> tuple[bool, str]:
    """(ready, why not): Ready condition, else the first container's waiting reason."""
    status = pod.get("status") or {}
    conditions = status.get("conditions") or []
    if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
        return True, "ready"
    for container in (status.get("initContainerStatuses") or []) + (
        status.get("containerStatuses") or []
    ):
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason"):
            message = waiting.get("message", "")
            return False, f"{container.get('name')}: {waiting['reason']}" + (
                f" ({message[:160]})" if message and waiting["reason"] in _STUCK_REASONS else ""
            )
    return False, str(status.get("phase", "Pending"))


@dataclass
class Clock:
    """Time as the backend sees it; tests pass a fake that never sleeps."""

    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


@dataclass
class Waiter:
    """Waits, by watching the run's namespace, until named Deployments have rolled out or Pods are
    ready; on timeout, the error says what each one is still waiting for."""

    kube: Kube
    namespace: str
    progress: Progress
    clock: Clock = field(default_factory=Clock)

    def deployments(self, names: Iterable[str], timeout_s: float) -> None:
        self._wait("apps/v1", "Deployment", set(names), rollout_state, timeout_s, "rollouts")

    def pods(self, names: Iterable[str], timeout_s: float) -> None:
        self._wait("v1", "Pod", set(names), pod_state, timeout_s, "pods")

    def _wait(
        self,
        api_version: str,
        kind: str,
        names: set[str],
        state_of: Callable[[Obj], tuple[bool, str]],
        timeout_s: float,
        what: str,
    ) -> None:
        if not names:
            return
        tally = _Tally(what, names, state_of, self.progress)
        started = self.clock.monotonic()
        while tally.pending:
            remaining = timeout_s - (self.clock.monotonic() - started)
            if remaining <= 0:
                break
            events = self.kube.watch(api_version, kind, self.namespace, max(int(remaining), 1))
            try:
                for obj in events:
                    if tally.see(obj) or self.clock.monotonic() - started >= timeout_s:
                        break
            finally:
                close = getattr(events, "close", None)
                if callable(close):
                    close()
            if tally.pending:  # the server ended the watch early: do not spin
                self.clock.sleep(1.0)
        if tally.pending:
            waiting = "; ".join(f"{n}: {tally.states[n]}" for n in sorted(tally.pending))
            raise BackendError(
                f"timed out after {timeout_s:.0f} s waiting for {what} in namespace "
                f"{self.namespace}: {waiting}"
            )


@dataclass
class _Tally:
    """Which of `names` are ready, and a progress line whenever that changes."""

    what: str
    names: set[str]
    state_of: Callable[[Obj], tuple[bool, str]]
    progress: Progress
    states: dict[str, str] = field(default_factory=dict)
    pending: set[str] = field(default_factory=set)
    last: str = ""

    def __post_init__(self) -> None:
        self.states = dict.fromkeys(self.names, "not created yet")
        self.pending = set(self.names)

    def see(self, obj: Obj) -> bool:
        """Record one object's state; True once every name is ready."""
        name = (obj.get("metadata") or {}).get("name")
        if name in self.names:
            done, self.states[name] = self.state_of(obj)
            if done:
                self.pending.discard(name)
            else:
                self.pending.add(name)
            line = _progress_line(self.what, self.names, self.pending, self.states)
            if line != self.last:
                self.progress(line)
                self.last = line
        return not self.pending


def _progress_line(what: str, names: set[str], pending: set[str], states: Mapping[str, str]) -> str:
    ready = len(names) - len(pending)
    line = f"{what}: {ready}/{len(names)} ready"
    if pending:
        first = sorted(pending)[0]
        line += f"; waiting for {first} ({states[first]})"
    return line
