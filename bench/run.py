"""meshlab benchmark: what a student waits for, and what the embedded mesh can carry.

    python bench/run.py [--runs 7] [--rps-requests 2000]

Reports medians from one run (this machine is shared and noisy: compare ratios, not
absolutes), and writes them to reports/bench.json:
  * time to verdict for lab 2: whole `run_lab` (load, deploy, check, tear down) and the
    check alone;
  * requests the sequential test used vs the design's expected N for a correct config;
  * requests/s through Envoy and a stand-in over one keep-alive connection;
  * static analysis of the lab folder (`meshlab analyze labs/2-traffic`): first call in the
    process, then the median of warm calls.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from meshlab.backends.embedded.backend import EmbeddedBackend
from meshlab.checks.stats import Design, expected_requests, fixed_sample_size
from meshlab.mesh.request import ProbeRequest
from meshlab.pipeline import prepare, run_lab

ROOT = Path(__file__).resolve().parent.parent
LAB = ROOT / "labs" / "2-traffic"
URL = "http://fleetman-staff-service:8080/driver/City%20Truck"


def time_to_verdict(runs: int) -> dict[str, float]:
    totals, checks, requests = [], [], []
    for _ in range(runs):
        started = time.perf_counter()
        report = run_lab(LAB)
        totals.append(time.perf_counter() - started)
        checks.append(report.seconds)
        requests.append(report.results[0].requests)
        assert report.passed, report.results[0].message
    shares = {"safe": 0.9, "risky": 0.1}
    return {
        "runs": runs,
        "median_seconds_total": statistics.median(totals),
        "median_seconds_deployed": statistics.median(checks),
        "median_requests": statistics.median(requests),
        "min_requests": min(requests),
        "max_requests": max(requests),
        "design_expected_requests": expected_requests(shares, Design()),
        "fixed_n_equivalent": fixed_sample_size(shares, Design()),
    }


def throughput(requests: int, runs: int = 3) -> dict[str, float]:
    prepared = prepare(LAB)
    rates = []
    with EmbeddedBackend().deploy(prepared.to_deploy()) as mesh, mesh.session() as session:
        session.send(ProbeRequest(URL), 50)  # warm the connections
        for _ in range(runs):
            started = time.perf_counter()
            outcomes = session.send(ProbeRequest(URL), requests)
            rates.append(requests / (time.perf_counter() - started))
            assert all(o.status == 200 for o in outcomes)
    return {"requests_per_run": requests, "median_requests_per_second": statistics.median(rates)}


def analysis_time(runs: int) -> dict[str, float]:
    from meshlab.analysis import analyze_paths

    started = time.perf_counter()
    analysis = analyze_paths([LAB])
    first = time.perf_counter() - started
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        analyze_paths([LAB])
        times.append(time.perf_counter() - started)
    return {
        "runs": runs,
        "objects": len(analysis.resources),
        "diagnostics": len(analysis.diagnostics),
        "first_call_ms": 1000 * first,
        "median_ms": 1000 * statistics.median(times),
        "max_ms": 1000 * max(times),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--rps-requests", type=int, default=2000)
    args = parser.parse_args()
    analysis = analysis_time(max(args.runs, 20))
    verdict = time_to_verdict(args.runs)
    rps = throughput(args.rps_requests)
    print(
        f"lab 2 time to verdict: median {verdict['median_seconds_total']:.2f} s end to end, "
        f"{verdict['median_seconds_deployed']:.2f} s deployed+checked ({args.runs} runs)"
    )
    print(
        f"requests used: median {verdict['median_requests']:.0f} "
        f"(min {verdict['min_requests']:.0f}, max {verdict['max_requests']:.0f}); design E[N] "
        f"{verdict['design_expected_requests']:.0f}; fixed-N test would need "
        f"{verdict['fixed_n_equivalent']}"
    )
    print(
        f"embedded mesh: median {rps['median_requests_per_second']:.0f} requests/s "
        "(one keep-alive connection through Envoy to a stand-in)"
    )
    print(
        f"static analysis of lab 2 ({analysis['objects']} objects): first call "
        f"{analysis['first_call_ms']:.0f} ms, then median {analysis['median_ms']:.1f} ms "
        f"(max {analysis['max_ms']:.1f} ms, {analysis['runs']} runs)"
    )
    out = ROOT / "reports" / "bench.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(
        json.dumps({"time_to_verdict": verdict, "throughput": rps, "analysis": analysis}, indent=2)
        + "\n"
    )


if __name__ == "__main__":
    main()
