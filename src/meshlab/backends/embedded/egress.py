"""How a stand-in finds its sidecar: one small JSON file per meshed pod, named to the stand-in
in `MESHLAB_EGRESS`, mapping a destination port to its sidecar's outbound listener port on
127.0.0.1 (`{"listeners": {"8080": 40123}}`). In a pod, iptables sends the app's outbound
connections to the sidecar; here the app dials the listener itself, and for a name only
ALLOW_ANY passes through (`{"passthrough": {"<host>:<port>": "<cluster>"}}`) it also says
which ClusterIP it dialled (mesh/passthrough.py). Envoy binds its
listeners on start, so the files are written after it is up and before any request; each
is written whole and renamed into place, so a stand-in never reads half a file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from meshlab.backends.embedded.envoy.bootstrap import prefix_of
from meshlab.backends.embedded.envoy.inbound import kube_proxy_listener_name
from meshlab.mesh.model import MeshPlan
from meshlab.mesh.passthrough import passed_through
from meshlab.mesh.proxies import MeshProxies

EGRESS_ENV = "MESHLAB_EGRESS"


def egress_path(workdir: Path, pod: str) -> Path:
    return workdir / "egress" / f"{pod}.json"


def write_egress_files(
    proxies: MeshProxies, listener_ports: Mapping[str, int], paths: Mapping[str, Path]
) -> None:
    for proxy in proxies.sidecars:
        prefix = prefix_of(proxy)
        listeners = {
            str(lst.port): listener_ports[prefix + lst.name]
            for lst in proxy.plan.listeners
            if lst.protocol == "HTTP" and prefix + lst.name in listener_ports
        }
        passthrough = passthrough_names(proxy.plan, proxy.namespace)
        payload = json.dumps({"listeners": listeners, "passthrough": passthrough}, sort_keys=True)
        for pod in proxy.pods:
            path = paths.get(pod)
            if path is None:
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".tmp")
            partial.write_text(payload, encoding="utf-8")
            os.replace(partial, path)


def passthrough_names(plan: MeshPlan, namespace: str) -> dict[str, str]:
    """Every name (as an app in `namespace` may write it) of a Service port this sidecar
    only passes through, with the cluster that plays its ClusterIP (kube-proxy's)."""
    out: dict[str, str] = {}
    for service in plan.registry.services:
        names = [f"{service.name}.{service.namespace}", service.fqdn]
        names += [f"{service.name}.{service.namespace}.svc"]
        if service.namespace == namespace:
            names.append(service.name)
        for port in service.ports:
            for name in names:
                if passed_through(plan, name, port.number, namespace) is service:
                    out[f"{name}:{port.number}"] = kube_proxy_listener_name(
                        service.fqdn, port.number
                    )
    return out
