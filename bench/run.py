"""meshlab benchmark: what a student waits for, and what the embedded mesh can carry.

    python bench/run.py [--runs 7] [--rps-requests 2000]

Reports medians from one run (this machine is shared and noisy: compare ratios, not
absolutes), and writes them to reports/bench.json:
  * time to verdict for lab 2: whole `run_lab` (load, deploy, check, tear down) and the
    check alone;
  * requests the sequential test used vs the design's expected N for a correct config;
  * requests/s through Envoy and a stand-in over one keep-alive connection;
  * static analysis of the lab folder (`meshlab analyze labs/2-traffic`): first call in the
    process, then the median of warm calls;
  * planning time for generated labs of N Services (each with a Deployment, a VirtualService
    and a DestinationRule), and how it grows: doubling N should about double it (linear);
  * grading a class: 24 lab-2 submissions of mixed quality (bench/grading.py), wall time,
    peak memory and the median per submission.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import tempfile
import time
from pathlib import Path

from grading import describe, grading_bench  # bench/grading.py, next to this script
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


def generated_service(i: int) -> str:
    """One Service with its Deployment, VirtualService and DestinationRule (subset v1)."""
    return f"""apiVersion: v1
kind: Service
metadata: {{name: svc-{i}}}
spec:
  selector: {{app: app-{i}}}
  ports: [{{name: http, port: 8080}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: app-{i}}}
spec:
  selector: {{matchLabels: {{app: app-{i}}}}}
  template:
    metadata: {{labels: {{app: app-{i}, version: v1}}}}
    spec:
      containers: [{{name: app, image: example/app:1}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: vs-{i}}}
spec:
  hosts: [svc-{i}]
  http:
  - route:
    - destination: {{host: svc-{i}, subset: v1}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: dr-{i}}}
spec:
  host: svc-{i}
  subsets: [{{name: v1, labels: {{version: v1}}}}]
"""


def planning_time(sizes: list[int], runs: int = 3) -> dict[str, object]:
    """Seconds `build_plan` takes for N generated Services (median of `runs`), and the
    growth ratio between successive sizes: about 2 per doubling is linear, 4 quadratic."""
    from meshlab.load.manifests import load_manifests
    from meshlab.mesh.plan import build_plan

    seconds: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="meshlab-bench-") as folder:
        for n in sizes:
            files = []
            for start in range(0, n, 250):  # one file per 250 (the YAML reader's node limit)
                path = Path(folder) / f"services-{n}-{start}.yaml"
                stop = min(n, start + 250)
                path.write_text("---\n".join(generated_service(i) for i in range(start, stop)))
                files.append(path)
            resources = load_manifests(files)
            times = []
            for _ in range(runs):
                started = time.perf_counter()
                plan = build_plan(resources)
                times.append(time.perf_counter() - started)
            assert len(plan.route_tables["8080"]) == n + 1  # every Service, then allow_any
            seconds[n] = statistics.median(times)
    growth = {f"{a}->{b}": seconds[b] / seconds[a] for a, b in itertools.pairwise(sizes)}
    return {"runs": runs, "seconds": {str(n): s for n, s in seconds.items()}, "growth": growth}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--rps-requests", type=int, default=2000)
    parser.add_argument("--plan-services", type=int, nargs="+", default=[500, 1000, 2000])
    parser.add_argument("--grade-jobs", type=int, default=None, help="default: the cores")
    args = parser.parse_args()
    grading = grading_bench(args.grade_jobs)
    planning = planning_time(args.plan_services)
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
    timings = ", ".join(f"{n} Services {s:.2f} s" for n, s in planning["seconds"].items())  # type: ignore[attr-defined]
    ratios = ", ".join(f"{k}: x{v:.2f}" for k, v in planning["growth"].items())  # type: ignore[attr-defined]
    print(f"planning: {timings} (growth {ratios}; x2 per doubling is linear)")
    print(describe(grading))
    out = ROOT / "reports" / "bench.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "time_to_verdict": verdict,
                "throughput": rps,
                "analysis": analysis,
                "planning": planning,
                "grading": grading,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
