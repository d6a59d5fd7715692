"""The probe's in-cluster half: runs inside the probe pod, next to its Istio sidecar.

meshlab mounts this file into the probe pod (a ConfigMap) and runs it with one exec per
batch, so N requests cost one API round trip, not N. Standard library only, Python 3.8+.

    python3 probe.py batch '{"url": ..., "method": ..., "headers": {...}, "count": N,
                             "prefix": "run-7-", "timeout": 30,
                             "connect": "host:port", "agent_id": true}'
        Sends N requests one after another on one keep-alive connection, as the app in a
        meshed pod would, each with `x-request-id: <prefix><i>` (the proxies log it),
        and prints one JSON line per request: {"rid", "status", "body", "headers", "error",
        "seconds"}. With `connect`, the connection goes there and the URL's host goes in
        `Host` (a browser's request to the ingress gateway); with `agent_id`, the id is also
        in the User-Agent, `meshlab-probe/<id>` (the gateway replaces x-request-id).

    python3 probe.py envoy
        Prints the client sidecar's clusters (with endpoint addresses) and HTTP routes, read
        from its admin port 127.0.0.1:15000, as one JSON object.
"""

from __future__ import annotations

import http.client
import json
import socket
import sys
import time
from typing import Any
from urllib.parse import urlsplit

BODY_LIMIT = 4096
ADMIN_HOST, ADMIN_PORT = "127.0.0.1", 15000
USER_AGENT = "meshlab-probe"


def describe_error(exc: BaseException, host: str) -> str:
    if isinstance(exc, socket.gaierror):
        return f"could not resolve host {host!r}: {exc.strerror or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection failed: {exc.strerror or exc}"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out waiting for a response"
    return f"{type(exc).__name__}: {exc}"


def run_batch(spec: dict[str, Any], out: Any) -> None:
    parts = urlsplit(spec["url"])
    host = parts.hostname or ""
    port = parts.port or 80
    virtual_host = None
    if spec.get("connect"):
        virtual_host = parts.netloc.rsplit("@", 1)[-1]
        host, _, connect_port = str(spec["connect"]).rpartition(":")
        port = int(connect_port)
    path = (parts.path or "/") + ("?" + parts.query if parts.query else "")
    timeout = float(spec.get("timeout", 30))
    connection: http.client.HTTPConnection | None = None
    for index in range(int(spec["count"])):
        rid = f"{spec['prefix']}{index}"
        headers = {"user-agent": f"{USER_AGENT}/{rid}" if spec.get("agent_id") else USER_AGENT}
        headers.update(spec.get("headers") or {})
        headers["x-request-id"] = rid
        if virtual_host is not None:
            headers["host"] = virtual_host
        started = time.monotonic()
        line: dict[str, Any] = {"rid": rid}
        try:
            if connection is None:
                connection = http.client.HTTPConnection(host, port, timeout=timeout)
            connection.request(spec.get("method", "GET"), path, headers=headers)
            response = connection.getresponse()
            body = response.read()
            line["status"] = response.status
            line["body"] = body[:BODY_LIMIT].decode("utf-8", "replace")
            received: dict[str, str] = {}
            for name, value in response.getheaders():
                key = name.lower()
                received[key] = f"{received[key]}, {value}" if key in received else value
            line["headers"] = received
            if response.will_close:
                connection.close()
                connection = None
        except Exception as exc:  # every failure is an outcome; reconnect for the next one
            line["status"] = None
            line["error"] = describe_error(exc, host)
            if connection is not None:
                connection.close()
                connection = None
        line["seconds"] = round(time.monotonic() - started, 6)
        out.write(json.dumps(line) + "\n")
    out.flush()
    if connection is not None:
        connection.close()


def admin(path: str) -> Any:
    connection = http.client.HTTPConnection(ADMIN_HOST, ADMIN_PORT, timeout=10)
    try:
        connection.request("GET", path)
        return json.loads(connection.getresponse().read().decode("utf-8"))
    finally:
        connection.close()


def summarize_clusters(clusters: dict[str, Any]) -> dict[str, list[str]]:
    """`/clusters?format=json` -> cluster name -> its endpoints ("10.244.0.7:8080")."""
    summary: dict[str, list[str]] = {}
    for cluster in clusters.get("cluster_statuses", []):
        hosts = []
        for host in cluster.get("host_statuses", []):
            address = (host.get("address") or {}).get("socket_address") or {}
            if address.get("address") is not None:
                hosts.append(f"{address.get('address')}:{address.get('port_value')}")
        summary[cluster.get("name", "")] = hosts
    return summary


def summarize_routes(dump: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """`/config_dump?resource=dynamic_route_configs` -> route table -> virtual hosts, each
    with its domains and the clusters its routes send to (with weights)."""
    tables: dict[str, list[dict[str, Any]]] = {}
    for entry in dump.get("configs", []):
        config = entry.get("route_config") or {}
        vhosts = []
        for vhost in config.get("virtual_hosts", []):
            targets = []
            for route in vhost.get("routes", []):
                action = route.get("route") or {}
                if "cluster" in action:
                    targets.append([action["cluster"], None])
                for weighted in (action.get("weighted_clusters") or {}).get("clusters", []):
                    weight = weighted.get("weight")
                    if isinstance(weight, dict):
                        weight = weight.get("value")
                    targets.append([weighted.get("name"), weight])
            vhosts.append(
                {"name": vhost.get("name"), "domains": vhost.get("domains", []), "targets": targets}
            )
        tables[config.get("name", "")] = vhosts
    return tables


def envoy_summary() -> dict[str, Any]:
    return {
        "clusters": summarize_clusters(admin("/clusters?format=json")),
        "routes": summarize_routes(admin("/config_dump?resource=dynamic_route_configs")),
    }


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[1] == "batch":
        run_batch(json.loads(argv[2]), sys.stdout)
        return 0
    if len(argv) == 2 and argv[1] == "envoy":
        sys.stdout.write(json.dumps(envoy_summary()) + "\n")
        return 0
    sys.stderr.write("usage: probe.py batch SPEC_JSON | probe.py envoy\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
