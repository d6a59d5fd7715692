"""External hosts on a real cluster: every ServiceEntry host answered by a stand-in pod in
the run namespace, so a kind run (and CI) never sends a request to the internet.

What Istio sees. A MESH_EXTERNAL ServiceEntry with resolution DNS becomes a cluster of type
STRICT_DNS (LOGICAL_DNS for DNS_ROUND_ROBIN) whose endpoints are the host itself, or the
`endpoints` addresses when the entry has some
(pilot/pkg/serviceregistry/serviceentry/conversion.go convertServices and
convertServiceEntryToInstances: with no endpoints, a DNS entry's one endpoint is the host).
meshlab gives every such host one `endpoints` address: a headless Service of its own
stand-in, `meshlab-ext-<i>-<host>`, in the run namespace. Envoy resolves that name with
the cluster's DNS, to the stand-in pods' IPs, so the access log's `%UPSTREAM_HOST%` names
the stand-in pod (labelled `meshlab.external: <host>`, as on the embedded backend). An
entry with several hosts is split into one entry per host, because `endpoints` are shared
by all hosts of an entry; istiod makes one Service per host anyway. Changing CoreDNS was
rejected: it is shared by every namespace of the cluster.

The client side. The probe never looks an external name up: a request to an external host
connects to the host's stand-in (to `meshlab-ext-unregistered` for a host with no
ServiceEntry) with the host in `Host`. The sidecar routes HTTP by `Host`, not by the address
dialled (0.0.0.0_<port> listeners), so it applies the lab's ServiceEntry, VirtualService,
egress gateway or REGISTRY_ONLY block exactly as for the real name; what it would let out
reaches a stand-in.

Not played: resolution NONE and STATIC (the address dialled or written would be the real
one), wildcard hosts, TLS ports (the stand-in speaks plain HTTP). Such an entry is refused
before anything is applied, naming it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import field
from typing import Any

from meshlab.backends.kind.accesslog import PROBE_POD
from meshlab.backends.kind.kube import Obj
from meshlab.backends.kind.origins import PROBE_IMAGE, SCRIPT_DIR, SCRIPT_PATH
from meshlab.errors import BackendUnavailable
from meshlab.load.manifests import MESH_CONFIG, Resource
from meshlab.mesh.external import EXTERNAL_LABEL, external_hosts
from meshlab.mesh.meshconfig import mesh_settings
from meshlab.mesh.model import Note
from meshlab.mesh.names import ISTIO_SYSTEM_NAMESPACE as ISTIO_SYSTEM
from meshlab.mesh.names import SERVICE_HOST_SUFFIXES
from meshlab.records import dataclass

STANDIN_LABEL = "meshlab.io/external"
UNREGISTERED = "unregistered"
SIDECAR_NAME = "meshlab-mesh-config"
# conversion.go convertPort: the protocols a plain-HTTP stand-in can answer
_PLAIN = {"http", "http2", "grpc", "grpc-web", "tcp", ""}
_DNS = ("DNS", "DNS_ROUND_ROBIN")


def standin_name(index: int, host: str) -> str:
    """A DNS label (63 characters at most), unique by its index."""
    slug = re.sub(r"[^a-z0-9-]+", "-", host.lower()).strip("-")
    return f"meshlab-ext-{index}-{slug}"[:63].rstrip("-")


@dataclass(frozen=True)
class StandIn:
    """The stand-in pod answering for one ServiceEntry host in the run namespace: its Deployment and
    headless Service, the ports it serves and its `meshlab.external` label."""

    host: str
    name: str  # its Deployment and headless Service
    ports: tuple[int, ...]
    replicas: int = 1
    label: str = ""  # the meshlab.external label value


@dataclass
class StandIns:
    """The external hosts of one lab run and where the probe connects for each."""

    namespace: str
    hosts: dict[str, StandIn] = field(default_factory=dict)
    local_names: frozenset[str] = frozenset()  # the lab's own Services, short and long
    active: bool = False  # the stand-ins are deployed (the lab has ServiceEntries or a mesh config)

    def fqdn(self, stand_in: StandIn) -> str:
        return f"{stand_in.name}.{self.namespace}.svc.cluster.local"

    @property
    def unregistered(self) -> StandIn:
        """The catch-all: what ALLOW_ANY would let through to a host with no ServiceEntry."""
        return StandIn("*", f"meshlab-ext-{UNREGISTERED}", (80,), 1, UNREGISTERED)

    def connect(self, host: str, port: int) -> str | None:
        """`host:port` the probe dials for an external `host` (None: an in-cluster name)."""
        name = host.lower().rstrip(".")
        if name in self.hosts:
            return f"{self.fqdn(self.hosts[name])}:{port}"
        if in_cluster(name, self.local_names):
            return None
        return f"{self.fqdn(self.unregistered)}:{port}"

    def refusal(self, host: str) -> str | None:
        """Why a request to `host` is not sent at all: an external host in a lab with no
        stand-ins (it has no ServiceEntry and no mesh config)."""
        name = host.lower().rstrip(".")
        if self.active or name in self.hosts or in_cluster(name, self.local_names):
            return None
        return (
            f"not sent: {host} is outside the cluster, and the kind backend sends no request "
            "there; this lab has no ServiceEntry, so no stand-in answers for external hosts "
            "(register the host with a ServiceEntry, or run the lab on the embedded backend)"
        )

    def objects(self) -> list[Obj]:
        """A Deployment and a headless Service per stand-in, the catch-all included (none
        when the lab has no ServiceEntry and no mesh config)."""
        out: list[Obj] = []
        if not self.active:
            return out
        for stand_in in [*self.hosts.values(), self.unregistered]:
            out += standin_objects(stand_in, self.namespace)
        return out


def in_cluster(host: str, local_names: frozenset[str]) -> bool:
    """A name the cluster's DNS answers itself: a short name (the search path makes it a
    Service), `x.<namespace>` for a namespace of the run (`local_names` holds them as
    `.<namespace>`), `x.ns.svc[.cluster.local]`, a lab Service; an address in a private
    range."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_private
    except ValueError:
        pass
    if "." not in host or host in local_names:
        return True
    if host.count(".") == 1 and f".{host.split('.')[1]}" in local_names:
        return True
    return any(host.endswith(s) for s in SERVICE_HOST_SUFFIXES if s) or host.endswith(".local")


def standin_objects(stand_in: StandIn, namespace: str) -> list[Obj]:
    """The stand-in pods (no sidecar: an external server has none, and would then refuse
    the plaintext a caller's sidecar sends a MESH_EXTERNAL host under STRICT mTLS) and the
    headless Service whose DNS name is the ServiceEntry's endpoint."""
    labels = {STANDIN_LABEL: stand_in.name, EXTERNAL_LABEL: stand_in.label or stand_in.host}
    pod_labels = {**labels, "sidecar.istio.io/inject": "false"}
    ports = [{"name": f"http-{p}", "port": p, "targetPort": p} for p in stand_in.ports]
    container: dict[str, Any] = {
        "name": "stand-in",
        "image": PROBE_IMAGE,
        "command": ["python3", SCRIPT_PATH, "serve", stand_in.host, *map(str, stand_in.ports)],
        "ports": [{"containerPort": p} for p in stand_in.ports],
        "volumeMounts": [{"name": "script", "mountPath": SCRIPT_DIR, "readOnly": True}],
    }
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": stand_in.name, "namespace": namespace, "labels": labels},
            "spec": {
                "replicas": stand_in.replicas,
                "selector": {"matchLabels": {STANDIN_LABEL: stand_in.name}},
                "template": {
                    "metadata": {"labels": pod_labels},
                    "spec": {
                        "terminationGracePeriodSeconds": 1,
                        "containers": [container],
                        "volumes": [{"name": "script", "configMap": {"name": PROBE_POD}}],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": stand_in.name, "namespace": namespace, "labels": labels},
            "spec": {
                "clusterIP": "None",  # DNS answers the pods' IPs: the log names the pod
                "selector": {STANDIN_LABEL: stand_in.name},
                "ports": ports,
            },
        },
    ]


def stand_ins(resources: Sequence[Resource], namespace: str, local: Sequence[str]) -> StandIns:
    """Every MESH_EXTERNAL host of the lab with its stand-in; refuses what cannot be played
    without the real address (exit 2, naming the entry)."""
    found = external_hosts(resources)
    for resource, what in found.skipped:
        if what != "location MESH_INTERNAL":
            raise BackendUnavailable(
                f"{resource.location}: {resource.ref}: {what} is not played on the kind "
                "backend (it would send requests to the real address, and a kind run never "
                "leaves the cluster); use resolution DNS with plain host names, or run this "
                "lab on the embedded backend"
            )
    for entry in found.hosts:
        if entry.resource.body.spec.resolution == "STATIC":
            raise BackendUnavailable(
                f"{entry.resource.location}: {entry.resource.ref}: resolution STATIC is not "
                "played on the kind backend (its endpoints are the real addresses, and a kind "
                "run never leaves the cluster); use resolution DNS, or run this lab on the "
                "embedded backend"
            )
    active = bool(found.hosts) or any(is_mesh_config(r) for r in resources)
    namespaces = {r.namespace for r in resources if r.namespace} | {namespace, ISTIO_SYSTEM}
    local_names = frozenset([*local, *(f".{ns}" for ns in namespaces)])
    out = StandIns(namespace, local_names=local_names, active=active)
    for index, entry in enumerate(found.hosts):
        plain = [p.number for p in entry.ports if (p.protocol or "").lower() in _PLAIN]
        label = entry.host if len(entry.host) <= 63 else entry.slug
        name = standin_name(index, entry.host)
        out.hosts[entry.host] = StandIn(entry.host, name, tuple(plain), entry.replicas, label)
    return out


def rewrite_service_entry(obj: Obj, standins: StandIns) -> list[Obj]:
    """A MESH_EXTERNAL DNS entry as one entry per host, each with its stand-in's Service as
    its only endpoint; any other object as it is."""
    spec = obj.get("spec")
    if obj.get("kind") != "ServiceEntry" or not isinstance(spec, dict):
        return [obj]
    location = spec.get("location") or "MESH_EXTERNAL"  # the proto enums' zero values
    resolution = spec.get("resolution") or "NONE"
    hosts = [str(h).lower().rstrip(".") for h in spec.get("hosts") or []]
    if location != "MESH_EXTERNAL" or resolution not in _DNS:
        return [obj]
    out = []
    for index, host in enumerate(hosts):
        stand_in = standins.hosts[host]
        one = {**obj, "metadata": dict(obj.get("metadata") or {}), "spec": dict(spec)}
        if len(hosts) > 1:
            one["metadata"]["name"] = f"{obj['metadata']['name']}-{index}"[:253]
        one["spec"]["hosts"] = [host]
        one["spec"]["endpoints"] = [{"address": standins.fqdn(stand_in)}]
        out.append(one)
    return out


def is_mesh_config(resource: Resource) -> bool:
    return resource.kind == "ConfigMap" and (resource.namespace, resource.name) == MESH_CONFIG


def mesh_config_sidecar(resources: Sequence[Resource], objects: list[Obj], namespace: str) -> None:
    """The lab's `istio` ConfigMap (istio-system) as the run namespace's own setting: never
    the cluster's mesh config, which every namespace shares. Its one setting meshlab reads,
    outboundTrafficPolicy.mode, goes into the namespace's default Sidecar (no
    workloadSelector), which wins over the mesh config and, with no `egress`, still sees
    every host (pilot/pkg/model/sidecar.go initSidecarScopeInternalIndexes: a Sidecar
    without outboundTrafficPolicy takes the mesh's; without egress listeners it gets
    `*/*`)."""
    settings = mesh_settings(resources)
    if settings.source is None:
        return
    if settings.problem is not None:
        raise BackendUnavailable(f"{settings.source.location}: {settings.problem}")
    mode = settings.outbound_mode
    for obj in objects:
        spec = obj.get("spec")
        selected = isinstance(spec, dict) and spec.get("workloadSelector")
        if obj.get("kind") == "Sidecar" and isinstance(spec, dict) and not selected:
            spec.setdefault("outboundTrafficPolicy", {"mode": mode})
            return
    objects.append(
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "Sidecar",
            "metadata": {"name": SIDECAR_NAME, "namespace": namespace},
            "spec": {"outboundTrafficPolicy": {"mode": mode}},
        }
    )


def external_notes(resources: Sequence[Resource]) -> list[Note]:
    """The ServiceEntry ports no stand-in answers on kind (TLS: the stand-in speaks plain
    HTTP), said in the report rather than left to a failed connection."""
    notes = []
    for entry in external_hosts(resources).hosts:
        for port in entry.ports:
            protocol = (port.protocol or "").lower()
            if protocol not in _PLAIN:
                notes.append(
                    Note(
                        f"{entry.resource.ref}: port {port.number} ({port.protocol}) of "
                        f"{entry.host} has no stand-in on kind (the stand-in speaks plain "
                        "HTTP), so a request there finds nothing listening",
                        entry.resource.location,
                    )
                )
    return notes
