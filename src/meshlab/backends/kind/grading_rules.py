"""The allow-list of pod-spec fields for grading, as rules: which fields of a pod spec,
container, probe, volume and securityContext a graded lab may set, and at which values.

Each rule yields a Finding per refused field, with its path inside the object, so the
message can point at the field's own file:line. Why each field is refused or allowed is
said next to it; grading.py explains the choice between refusing and neutralising.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from meshlab.backends.kind.images import GRADING_IMAGE_PREFIXES, image_allowed
from meshlab.records import dataclass

FieldPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Finding:
    """One refused field, at `path` inside the object."""

    path: FieldPath
    message: str


Rule = Callable[[Any, FieldPath, "Policy"], Iterator[Finding]]


@dataclass(frozen=True)
class Policy:
    """What a graded submission may use beyond the fixed allow-list: the image repositories its pods
    may run."""

    images: tuple[str, ...] = GRADING_IMAGE_PREFIXES


def shown(value: Any) -> str:
    """A value from the submission as a message may quote it: repr'd, and short."""
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."


def _ok(value: Any, at: FieldPath, policy: Policy) -> Iterator[Finding]:
    return iter(())


def _refuse(why: str) -> Rule:
    def rule(value: Any, at: FieldPath, policy: Policy) -> Iterator[Finding]:
        yield Finding(at, f"may not be set in a graded lab: {why}")

    return rule


def _only(allowed: tuple[Any, ...], why: str) -> Rule:
    """Harmless at these values (what `kubectl get -o yaml` writes), refused otherwise."""

    def rule(value: Any, at: FieldPath, policy: Policy) -> Iterator[Finding]:
        if value not in allowed:
            allowed_ = " or ".join(repr(a) for a in allowed)
            yield Finding(
                at, f"is {shown(value)}; a graded lab may set it only to {allowed_}: {why}"
            )

    return rule


def _fields(table: Mapping[str, Rule], what: str) -> Rule:
    """A mapping whose every key must be in `table` (the allow-list proper)."""

    def rule(value: Any, at: FieldPath, policy: Policy) -> Iterator[Finding]:
        if value is None:
            return
        if not isinstance(value, Mapping):
            yield Finding(at, f"must be a mapping ({what})")
            return
        for key, item in value.items():
            check = table.get(str(key))
            if check is None:
                yield Finding((*at, str(key)), f"is not on the grading allow-list for {what}")
            else:
                yield from check(item, (*at, str(key)), policy)

    return rule


def _each(rule: Rule) -> Rule:
    def each(value: Any, at: FieldPath, policy: Policy) -> Iterator[Finding]:
        if isinstance(value, list):
            for index, item in enumerate(value):
                yield from rule(item, (*at, index), policy)
        elif value is not None:
            yield Finding(at, "must be a list")

    return each


# --- containers ---------------------------------------------------------------------------

_NO_HOST = (
    "the kubelet would connect from the node to a host the lab names (any address the node reaches)"
)
_HANDLER_RULES: dict[str, Rule] = {
    "httpGet": _fields(
        {
            "path": _ok,
            "port": _ok,
            "scheme": _ok,
            "httpHeaders": _ok,
            "host": _refuse(_NO_HOST),
        },
        "an httpGet handler",
    ),
    "tcpSocket": _fields({"port": _ok, "host": _refuse(_NO_HOST)}, "a tcpSocket handler"),
    "grpc": _fields({"port": _ok, "service": _ok}, "a grpc handler"),
    "exec": _ok,  # runs inside the container, with the container's own rights
}
_HANDLER = _fields({**_HANDLER_RULES, "sleep": _ok}, "a lifecycle handler")
_PROBE = _fields(
    {
        **_HANDLER_RULES,
        **dict.fromkeys(
            (
                "initialDelaySeconds",
                "periodSeconds",
                "timeoutSeconds",
                "successThreshold",
                "failureThreshold",
                "terminationGracePeriodSeconds",
            ),
            _ok,
        ),
    },
    "a probe",
)
_LIFECYCLE = _fields(
    {"postStart": _HANDLER, "preStop": _HANDLER, "stopSignal": _ok}, "a container's lifecycle"
)

_CAPABILITIES = _fields(
    {
        "drop": _ok,
        "add": _refuse(
            "added capabilities (NET_ADMIN rewrites the pod's iptables around the sidecar, "
            "SYS_ADMIN and friends reach the node)"
        ),
    },
    "capabilities",
)
_UNCONFINED = "an unconfined profile lifts the runtime's default system-call and file filters"
_PROFILE = _fields(
    {"type": _only(("RuntimeDefault", "Localhost"), _UNCONFINED), "localhostProfile": _ok},
    "a security profile",
)
_CONTAINER_SECURITY = _fields(
    {
        # root inside an unprivileged container, with no added capabilities and no host
        # namespace, is confined by the runtime; the fleetman images may well run as root
        # by default, so refusing `runAsUser: 0` would refuse nothing real.
        "runAsUser": _ok,
        "runAsGroup": _ok,
        "runAsNonRoot": _ok,
        "readOnlyRootFilesystem": _ok,
        "privileged": _only((False,), "a privileged container is root on the node"),
        "allowPrivilegeEscalation": _only(
            (False,), "setuid binaries could then gain what the container was not given"
        ),
        "capabilities": _CAPABILITIES,
        "seccompProfile": _PROFILE,
        "appArmorProfile": _PROFILE,
        "procMount": _only(("Default",), "an unmasked /proc exposes the node's kernel settings"),
    },
    "a container's securityContext",
)


def _image(value: Any, at: FieldPath, policy: Policy) -> Iterator[Finding]:
    if not isinstance(value, str) or not image_allowed(value, policy.images):
        yield Finding(
            at,
            f"is {shown(value)}; a graded lab may run only images from "
            f"{', '.join(policy.images)} (the course's images)",
        )


_PORT = _fields(
    {
        "containerPort": _ok,
        "name": _ok,
        "protocol": _ok,
        "hostPort": _ok,  # neutralised: dropped before apply (see neutralised())
        "hostIP": _ok,
    },
    "a container port",
)
_MOUNT = _fields(
    {
        "name": _ok,
        "mountPath": _ok,
        "readOnly": _ok,
        "subPath": _ok,
        "subPathExpr": _ok,
        "recursiveReadOnly": _ok,
        "mountPropagation": _only(
            ("None",), "mounts would propagate between the container and the node"
        ),
    },
    "a volume mount",
)
_NO_CODE = (
    "it replaces what the image runs, so any image with a shell would run code of the "
    "submission's choosing; the course's images are configured through `env`"
)
_CONTAINER = _fields(
    {
        "name": _ok,
        "image": _image,
        "imagePullPolicy": _ok,
        "ports": _each(_PORT),
        "env": _ok,
        "envFrom": _ok,
        "resources": _ok,
        "resizePolicy": _ok,
        "livenessProbe": _PROBE,
        "readinessProbe": _PROBE,
        "startupProbe": _PROBE,
        "lifecycle": _LIFECYCLE,
        "securityContext": _CONTAINER_SECURITY,
        "volumeMounts": _each(_MOUNT),
        "workingDir": _ok,
        "terminationMessagePath": _ok,
        "terminationMessagePolicy": _ok,
        "restartPolicy": _ok,  # `Always` on an init container makes it a native sidecar
        "stdin": _ok,
        "stdinOnce": _ok,
        "tty": _ok,
        "command": _refuse(_NO_CODE),
        "args": _refuse(_NO_CODE),
        "volumeDevices": _refuse("raw block devices from the node"),
    },
    "a container",
)

# --- the pod ------------------------------------------------------------------------------

_VOLUME_KINDS = ("configMap", "secret", "emptyDir")


def _volume(value: Any, at: FieldPath, policy: Policy) -> Iterator[Finding]:
    if not isinstance(value, Mapping):
        yield Finding(at, "must be a mapping (a volume)")
        return
    for key in value:
        if key != "name" and key not in _VOLUME_KINDS:
            why = (
                "it mounts the node's own files into the pod"
                if key == "hostPath"
                else "a course lab needs only configMap, secret and emptyDir volumes"
            )
            yield Finding(
                (*at, str(key)), f"is a {shown(key)} volume; a graded lab may not use it: {why}"
            )


_SCHEDULING = (
    "it chooses or pins the node (or jumps the queue); a kind cluster for grading has one "
    "node, the control plane, and a lab's traffic does not depend on placement"
)
_POD_SECURITY = _fields(
    {
        "runAsUser": _ok,
        "runAsGroup": _ok,
        "runAsNonRoot": _ok,
        "fsGroup": _ok,
        "fsGroupChangePolicy": _ok,
        "supplementalGroups": _ok,
        "supplementalGroupsPolicy": _ok,
        "seccompProfile": _PROFILE,
        "appArmorProfile": _PROFILE,
        "sysctls": _refuse("sysctls change kernel settings; some reach beyond the pod"),
        "seLinuxOptions": _refuse("it relabels what the pod may touch on the node"),
        "seLinuxChangePolicy": _ok,
        "windowsOptions": _refuse("a Linux lab has no Windows options"),
    },
    "a pod's securityContext",
)
_HOST_NS = "it shares the node's {} namespace with the pod, outside the container's walls"
POD_SPEC_RULES: dict[str, Rule] = {
    "containers": _each(_CONTAINER),
    "initContainers": _each(_CONTAINER),  # the same rules as any container
    "volumes": _each(_volume),
    "securityContext": _POD_SECURITY,
    "serviceAccountName": _ok,  # the lab can create no Role or RoleBinding: no rights
    "serviceAccount": _ok,
    "automountServiceAccountToken": _ok,
    "restartPolicy": _ok,
    "terminationGracePeriodSeconds": _ok,  # neutralised: capped (see neutralised())
    "activeDeadlineSeconds": _ok,
    "enableServiceLinks": _ok,
    "hostname": _ok,
    "subdomain": _ok,
    "setHostnameAsFQDN": _ok,
    "resources": _ok,
    "hostUsers": _ok,  # false = user namespaces: more confined, not less
    "dnsPolicy": _only(("ClusterFirst",), "the mesh's names resolve through the cluster DNS"),
    "schedulerName": _only(("default-scheduler",), _SCHEDULING),
    "hostNetwork": _only((False,), _HOST_NS.format("network")),
    "hostPID": _only((False,), _HOST_NS.format("process")),
    "hostIPC": _only((False,), _HOST_NS.format("IPC")),
    "shareProcessNamespace": _only(
        (False,), "the app would see the sidecar's processes and read its workload certificate"
    ),
    "ephemeralContainers": _refuse("debug containers are not part of a lab"),
    "nodeName": _refuse(_SCHEDULING),
    "nodeSelector": _refuse(_SCHEDULING),
    "affinity": _refuse(_SCHEDULING),
    "tolerations": _refuse(_SCHEDULING),
    "topologySpreadConstraints": _refuse(_SCHEDULING),
    "schedulingGates": _refuse(_SCHEDULING),
    "priority": _refuse(_SCHEDULING),
    "priorityClassName": _refuse(_SCHEDULING),
    "preemptionPolicy": _refuse(_SCHEDULING),
    "runtimeClassName": _refuse("it picks another container runtime handler"),
    "overhead": _refuse("set by the runtime class, never by a lab"),
    "resourceClaims": _refuse("dynamic resources (devices) from the node"),
    "dnsConfig": _refuse("the mesh's names resolve through the cluster DNS"),
    "hostAliases": _refuse("it rewrites what the pod's host names resolve to"),
    "imagePullSecrets": _refuse("the course's images are public"),
    "readinessGates": _refuse("a course lab needs none"),
    "os": _refuse("the course's images are Linux images"),
}
POD_SPEC = _fields(POD_SPEC_RULES, "a pod spec")
