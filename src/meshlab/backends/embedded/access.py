"""What `meshlab up` prints: how to reach the running mesh by hand, the way the course
reaches minikube — the webapp through the ingress gateway in a browser, and any Service with
curl from inside the mesh (through the test client's sidecar, so its rules apply)."""

from __future__ import annotations

import shlex
from collections.abc import Mapping

from meshlab.backends.base import AccessPoint
from meshlab.backends.embedded.envoy.bootstrap import prefix_of
from meshlab.mesh.proxies import MeshProxies, ProxyPlan

MAX_SERVICES = 20  # a long list helps no one; `meshlab explain` covers the rest


def access_points(proxies: MeshProxies, ports: Mapping[str, int]) -> list[AccessPoint]:
    points = _gateway_points(proxies.ingress(), ports)
    client = proxies.client.plan
    for listener in client.listeners:
        if listener.protocol != "HTTP" or listener.name not in ports:
            continue
        table = client.route_tables.get(listener.route_table or "", [])
        for vhost in table:
            if vhost.service is None or len(points) >= MAX_SERVICES:
                continue
            host = vhost.service.name + ("" if listener.port == 80 else f":{listener.port}")
            url = f"http://127.0.0.1:{ports[listener.name]}/"
            points.append(
                AccessPoint(
                    f"{vhost.service.name} from a meshed pod (port {listener.port})",
                    f"curl -H {shlex.quote('Host: ' + host)} {url}",
                )
            )
    return points


def _gateway_points(gateway: ProxyPlan | None, ports: Mapping[str, int]) -> list[AccessPoint]:
    if gateway is None:
        return []
    points = []
    prefix = prefix_of(gateway)
    for listener in gateway.plan.listeners:
        port = ports.get(prefix + listener.name)
        if port is None or listener.route_table is None:
            continue
        domains = sorted(
            {d for v in gateway.plan.route_tables.get(listener.route_table, []) for d in v.domains}
        )
        names = [d for d in domains if d != "*" and "*" not in d]
        if "*" in domains or not names:
            points.append(
                AccessPoint(
                    f"the ingress gateway (server port {listener.port}) in a browser",
                    f"http://127.0.0.1:{port}/",
                )
            )
        for name in names:
            points.append(
                AccessPoint(
                    f"{name} through the ingress gateway (add `127.0.0.1 {name}` to "
                    "/etc/hosts for a browser, as the course does for minikube)",
                    f"http://{name}:{port}/   or   "
                    f"curl -H {shlex.quote('Host: ' + name)} http://127.0.0.1:{port}/",
                )
            )
    return points
