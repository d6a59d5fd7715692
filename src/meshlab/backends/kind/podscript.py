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
        `Host` (a browser's request to the ingress gateway, or an external host's stand-in);
        with `agent_id`, the id is also in the User-Agent, `meshlab-probe/<id>` (the gateway
        replaces x-request-id). With `jar` (name -> value), the batch is one client that keeps
        cookies: it sends the jar's cookies with every request, takes each `Set-Cookie` into
        it (a `Max-Age=0` one out), and prints the jar it ends with on the last line. With
        `start_at` (seconds since the epoch), the first request waits for that instant, so
        concurrent clients' batches start together.

    python3 probe.py serve HOST PORT [PORT ...]
        Stands in for the external host HOST inside the cluster: answers any method and path
        on each PORT with 200 and `external HOST` (HOST `*`: the host the request names), so
        no check ever needs the internet.

    python3 probe.py envoy
        Prints the client sidecar's clusters (with endpoint addresses) and HTTP routes, read
        from its admin port 127.0.0.1:15000, as one JSON object.
"""

from __future__ import annotations

import http.client
import http.cookies
import http.server
import json
import socket
import sys
import threading
import time
from typing import Any
from urllib.parse import urlsplit

BODY_LIMIT = 4096
MAX_START_WAIT = 5.0  # a `start_at` further ahead means another clock: start at once
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


def take_cookies(jar: dict[str, str], set_cookies: list[str]) -> None:
    """Each `Set-Cookie` into the jar (one host per client, so domain and path are not
    kept); `Max-Age=0` removes the cookie, as a browser does."""
    for line in set_cookies:
        parsed: http.cookies.SimpleCookie = http.cookies.SimpleCookie()
        try:
            parsed.load(line)
        except http.cookies.CookieError:
            continue
        for name, morsel in parsed.items():
            if morsel["max-age"] == "0":
                jar.pop(name, None)
            else:
                jar[name] = morsel.coded_value


def cookie_header(jar: dict[str, str], written: str | None) -> str | None:
    """The request's own `cookie` header, then the jar's cookies it does not name."""
    own = [part.strip() for part in (written or "").split(";") if part.strip()]
    names = {part.split("=", 1)[0] for part in own}
    own += [f"{name}={value}" for name, value in jar.items() if name not in names]
    return "; ".join(own) or None


def request_headers(
    spec: dict[str, Any], rid: str, virtual_host: str | None, jar: dict[str, str] | None
) -> dict[str, str]:
    headers = {"user-agent": f"{USER_AGENT}/{rid}" if spec.get("agent_id") else USER_AGENT}
    headers.update(spec.get("headers") or {})
    headers["x-request-id"] = rid
    if virtual_host is not None:
        headers["host"] = virtual_host
    if jar is not None:
        written = next((v for k, v in headers.items() if k.lower() == "cookie"), None)
        headers = {k: v for k, v in headers.items() if k.lower() != "cookie"}
        cookie = cookie_header(jar, written)
        if cookie is not None:
            headers["cookie"] = cookie
    return headers


def read_response(
    response: http.client.HTTPResponse, line: dict[str, Any], jar: dict[str, str] | None
) -> None:
    body = response.read()
    line["status"] = response.status
    line["body"] = body[:BODY_LIMIT].decode("utf-8", "replace")
    received: dict[str, str] = {}
    for name, value in response.getheaders():
        key = name.lower()
        received[key] = f"{received[key]}, {value}" if key in received else value
    line["headers"] = received
    if jar is not None:
        take_cookies(jar, response.msg.get_all("set-cookie") or [])


def wait_for_start(spec: dict[str, Any]) -> None:
    """Concurrent clients' batches start together at `start_at` (seconds since the epoch,
    the node's clock); one already past, or absurdly far, starts at once."""
    if spec.get("start_at") is None:
        return
    delay = float(spec["start_at"]) - time.time()
    if 0 < delay <= MAX_START_WAIT:
        time.sleep(delay)


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
    jar: dict[str, str] | None = None
    if isinstance(spec.get("jar"), dict):
        jar = {str(k): str(v) for k, v in spec["jar"].items()}
    count = int(spec["count"])
    wait_for_start(spec)
    for index in range(count):
        rid = f"{spec['prefix']}{index}"
        headers = request_headers(spec, rid, virtual_host, jar)
        started = time.monotonic()
        line: dict[str, Any] = {"rid": rid}
        try:
            if connection is None:
                connection = http.client.HTTPConnection(host, port, timeout=timeout)
            connection.request(spec.get("method", "GET"), path, headers=headers)
            response = connection.getresponse()
            read_response(response, line, jar)
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
        if jar is not None and index == count - 1:
            line["jar"] = jar
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


def stand_in(host: str) -> type[http.server.BaseHTTPRequestHandler]:
    """Answers as `external <host>`; `*` (the catch-all for hosts without a ServiceEntry)
    answers as the host the request names."""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            if length:
                self.rfile.read(length)
            named = (self.headers.get("host") or "").rsplit(":", 1)[0] or "?"
            played = named if host == "*" else host
            answer = f"external {played}".encode()
            self.send_response(200)
            self.send_header("content-type", "text/plain")
            self.send_header("content-length", str(len(answer)))
            self.send_header("x-meshlab-external", played)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(answer)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = answer

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


def serve(
    host: str,
    ports: list[int],
    bind: str = "0.0.0.0",  # noqa: S104 (in the stand-in's own pod, see below)
) -> list[http.server.ThreadingHTTPServer]:
    """The stand-in's servers, each on a thread of its own (the caller keeps the process).
    In its pod it listens on every address (the pod's own network namespace: its pod IP is
    what the mesh connects to); tests pass 127.0.0.1."""
    servers = []
    for port in ports:
        server = http.server.ThreadingHTTPServer((bind, port), stand_in(host))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    return servers


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[1] == "batch":
        run_batch(json.loads(argv[2]), sys.stdout)
        return 0
    if len(argv) == 2 and argv[1] == "envoy":
        sys.stdout.write(json.dumps(envoy_summary()) + "\n")
        return 0
    if len(argv) >= 4 and argv[1] == "serve" and all(a.isdigit() for a in argv[3:]):
        serve(argv[2], [int(a) for a in argv[3:]])
        while True:
            time.sleep(3600)
    sys.stderr.write(
        "usage: probe.py batch SPEC_JSON | probe.py envoy | probe.py serve HOST PORT...\n"
    )
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
