"""The whole fleetman mesh of lab 3 (issue 10's budget): every workload's sidecar and the
ingress gateway in one Envoy. Seconds until it is ready to serve, summed RSS, requests/s from
a browser through the gateway (one hop), and from the test client along the app's 3-hop
chain (webapp -> api-gateway -> staff-service). Medians of a few deployments, one run."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import psutil

from meshlab.backends.embedded.backend import EmbeddedBackend
from meshlab.mesh.request import Origin, ProbeRequest
from meshlab.pipeline import prepare

ROOT = Path(__file__).resolve().parent.parent
LAB3 = ROOT / "labs" / "3-gateways-ending"
BROWSER = ProbeRequest("http://192.168.49.2:31380/", origin=Origin("browser"))
CHAIN = ProbeRequest("http://fleetman-webapp/api/vehicles/driver/City%20Truck")


def _rate(session, request: ProbeRequest, requests: int) -> float:  # type: ignore[no-untyped-def]
    session.send(request, 20)  # warm the connections
    started = time.perf_counter()
    for _ in range(requests // 10):
        outcomes = session.send(request, 10)
        assert all(o.status == 200 for o in outcomes), outcomes[0]
    return requests / (time.perf_counter() - started)


def whole_mesh(runs: int = 5, requests: int = 1000, lab: Path = LAB3) -> dict[str, float]:
    prepared = prepare(lab)
    backend = EmbeddedBackend()
    ready, rss, gateway, chain = [], [], [], []
    for run in range(runs):
        started = time.perf_counter()
        with backend.deploy(prepared.to_deploy()) as mesh:
            ready.append(time.perf_counter() - started)
            me = psutil.Process()
            rss.append(sum(p.memory_info().rss for p in [me, *me.children(recursive=True)]))
            if run < 3:
                with mesh.session() as session:
                    gateway.append(_rate(session, BROWSER, requests))
                    hops = session.send(CHAIN, 1)[0].hops
                    assert [h.depth for h in hops] == [1, 2, 3], hops
                    chain.append(_rate(session, CHAIN, requests // 2))
    return {
        "workloads": len(prepared.to_deploy().proxies.sidecars),
        "seconds_ready": statistics.median(ready),
        "rss_mb": statistics.median(rss) / 2**20,
        "gateway_requests_per_second": statistics.median(gateway),
        "chain_3_hops_requests_per_second": statistics.median(chain),
    }


def describe(figures: dict[str, float]) -> str:
    return (
        f"lab 3 whole mesh ({figures['workloads']:.0f} workload sidecars + the ingress gateway): "
        f"ready in {figures['seconds_ready']:.2f} s (budget 1 s), {figures['rss_mb']:.0f} MB "
        f"summed RSS (budget 400 MB); {figures['gateway_requests_per_second']:.0f} requests/s "
        f"through the gateway, {figures['chain_3_hops_requests_per_second']:.0f}/s along the "
        "3-hop chain"
    )
