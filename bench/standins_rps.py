"""Requests/s through one staff-service stand-in over a single keep-alive connection.

    python bench/standins_rps.py [--requests 2000] [--runs 3] [--no-nagle-comparison]

Also measures two deliberately worse servers, to show why the stand-in sets TCP_NODELAY and
writes each response in one send: with Nagle on, a header write followed by a body write
waits for the client's delayed ACK (~40 ms on Linux) on every request.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import sys
import time
from typing import Any

from meshlab.backends.embedded.hosts import start_standins
from meshlab.backends.embedded.processes import ProcessGroup
from meshlab.backends.embedded.standins import PodSpec, behaviour_for
from meshlab.backends.embedded.standins.host import ready_line
from meshlab.backends.embedded.standins.server import Response, Standin, StandinHandler

IMAGE = "richardchesterwood/istio-fleetman-staff-service:6"
PATH = "/driver/City%20Truck"


class NagleOneWrite(StandinHandler):
    """Nagle left on, but still one write per response."""

    disable_nagle_algorithm = False


class NagleTwoWrites(NagleOneWrite):
    """Nagle on and headers/body as separate writes: the stdlib send_header() style."""

    def send_standin_response(self, response: Response) -> None:
        self.send_response_only(response.status)
        self.send_header("content-type", response.content_type)
        self.send_header("content-length", str(len(response.body)))
        self.send_header("x-meshlab-pod", self.server.pod.name)
        self.end_headers()
        self.wfile.write(response.body)


VARIANTS: dict[str, type[StandinHandler]] = {
    "nagle-one-write": NagleOneWrite,
    "nagle-two-writes": NagleTwoWrites,
}


def serve_variant(variant: str) -> None:
    """Child mode: serve with a variant handler until stdin closes (the bench's lifeline)."""
    pod = PodSpec(variant, "bench", IMAGE, {}, (8080,))
    with Standin(pod, behaviour_for(IMAGE), VARIANTS[variant]) as standin:
        standin.start()
        print(ready_line({pod.name: standin.ports}), flush=True)
        sys.stdin.buffer.read()


def measure(port: int, requests: int) -> float:
    """Requests/s for `requests` sequential GETs on one keep-alive connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", PATH)  # connect and warm up outside the timed loop
        conn.getresponse().read()
        start = time.perf_counter()
        for _ in range(requests):
            conn.request("GET", PATH)
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise SystemExit(f"unexpected status {response.status}")
        return requests / (time.perf_counter() - start)
    finally:
        conn.close()


def median_rps(port: int, requests: int, runs: int) -> tuple[float, list[float]]:
    results = [measure(port, requests) for _ in range(runs)]
    return statistics.median(results), results


def report(label: str, rps: tuple[float, list[float]], requests: int) -> None:
    median, runs = rps
    shown = ", ".join(f"{r:,.0f}" for r in runs)
    print(f"{label:<34} {median:>9,.0f} req/s  (median of {len(runs)} x {requests}: {shown})")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--slow-requests", type=int, default=50, help="per run, Nagle variants")
    p.add_argument("--no-nagle-comparison", action="store_true")
    p.add_argument("--serve", choices=sorted(VARIANTS), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve:
        serve_variant(args.serve)
        return 0

    print(f"python {sys.version.split()[0]}, GET {PATH} on one keep-alive connection")
    with ProcessGroup() as group:
        pod = PodSpec("staff-bench", "bench", IMAGE, {}, (8080,))
        started = time.perf_counter()
        port = start_standins(group, [pod])[pod.name][8080]
        print(f"stand-in ready in {(time.perf_counter() - started) * 1000:.0f} ms")
        report(
            "meshlab stand-in (TCP_NODELAY)",
            median_rps(port, args.requests, args.runs),
            args.requests,
        )
        if not args.no_nagle_comparison:
            for variant in VARIANTS:
                # our own script: it imports the same meshlab as this process does
                argv = [sys.executable, __file__, "--serve", variant]
                proc = group.spawn(variant, argv, env=dict(os.environ))
                ready: dict[str, Any] = proc.read_json_line(timeout=20)
                vport = int(ready["pods"][variant]["8080"])
                rps = median_rps(vport, args.slow_requests, args.runs)
                report(f"{variant} (Nagle on)", rps, args.slow_requests)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
