"""Budgets: how much one run may ask of the machine, and the refusals checked before anything
starts (files, objects, Services, pods).

Why: instructors grade whole classes by running whatever students submit. `replicas: 5000`
would start 5000 stand-ins, 20,000 copies of one manifest or 9000 Services would take minutes
to plan. Each budget has a stated default and a flag (meshlab.options declares the flags, named
`--max-` + the field, e.g. `--max-pods`); a refusal is an InputError naming the object, its
file:line and the flag (exit 2, nothing started). Budgets that the input cannot show (requests,
time, memory) are enforced while running (meshlab.checks.ledger).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from meshlab.errors import InputError, Location
from meshlab.records import dataclass

if TYPE_CHECKING:
    from meshlab.load.manifests import Resource

MIB = 1024 * 1024


@dataclass(frozen=True)
class Budgets:
    """The limits of one run. The defaults fit every course lab many times over and keep a
    grading runner (2 cores, a few GB) responsive: 64 stand-ins are about 1.5 GB; 40,000
    requests judge any split up to 99/1 sequentially (its cap is 37,690) in under a minute."""

    pods: int = 64  # replicas of every Deployment, plus bare Pods: each a stand-in and a sidecar
    objects: int = 2000  # Kubernetes and Istio objects in the manifests
    services: int = 500  # Services (each one a vhost and clusters in the Envoy config)
    manifest_bytes: int = 4 * MIB  # lab.yaml and its manifests, read before parsing
    checks: int = 50  # checks in lab.yaml
    expect_buckets: int = 32  # entries of one check's `expect`
    check_requests: int = 40_000  # requests one check may send (never above: its test's cap)
    run_requests: int = 200_000  # requests of all checks of the run together
    check_seconds: float = 120.0  # wall time of one check
    run_seconds: float = 600.0  # wall time of the run, from loading the lab
    memory_mb: int = 3072  # resident memory of meshlab, Envoy and the stand-ins together

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"{flag_for(name)} must be a positive number, got {value!r}")


def flag_for(budget: str) -> str:
    """The command-line flag of a budget field: `check_requests` -> `--max-check-requests`."""
    return "--max-" + budget.replace("_", "-")


def over(budget: str, found: str, limit: float, location: Location | None = None) -> InputError:
    """The refusal every budget uses: what was found, the limit and the flag that raises it."""
    shown = f"{limit:g}" if isinstance(limit, float) else str(limit)
    return InputError(
        f"{found}; the limit is {shown} ({flag_for(budget)})",
        location,
        hint=f"over budget: nothing was started; an instructor can raise {flag_for(budget)}",
    )


def refuse_files(files: Sequence[Path], budgets: Budgets) -> None:
    """Before reading: lab.yaml and the manifests together within `manifest_bytes`."""
    sizes = {path: path.stat().st_size for path in files if path.is_file()}
    total = sum(sizes.values())
    if total > budgets.manifest_bytes:
        largest = max(sizes, key=lambda p: sizes[p])
        raise over(
            "manifest_bytes",
            f"the lab's files are {total} bytes ({largest.name}: {sizes[largest]} bytes)",
            budgets.manifest_bytes,
            Location(largest, 1),
        )


def replicas(resource: Resource) -> int:
    """The pods an object asks for, read from its schema object (no pod is built)."""
    if resource.kind == "Pod":
        return 1
    if resource.kind == "Deployment":
        return int(resource.body.spec.replicas)
    return 0


def refuse_objects(resources: Sequence[Resource], budgets: Budgets) -> None:
    """After loading, before planning: objects, Services and pods. Pods are counted from the
    replicas fields, so `replicas: 1e20` is refused before a single pod object exists."""
    if len(resources) > budgets.objects:
        first_over = resources[budgets.objects]
        raise over(
            "objects",
            f"{len(resources)} objects in the manifests ({first_over.ref} is number "
            f"{budgets.objects + 1})",
            budgets.objects,
            first_over.location,
        )
    services = [r for r in resources if r.kind == "Service"]
    if len(services) > budgets.services:
        first_over = services[budgets.services]
        raise over(
            "services",
            f"{len(services)} Services ({first_over.ref} is number {budgets.services + 1})",
            budgets.services,
            first_over.location,
        )
    owners = [(r, replicas(r)) for r in resources if replicas(r)]
    total = sum(count for _, count in owners)
    if total > budgets.pods:
        biggest, count = max(owners, key=lambda owner: owner[1])
        where = biggest.locate("spec", "replicas") if biggest.kind != "Pod" else biggest.location
        what = f"replicas: {count}" if biggest.kind != "Pod" else "a bare Pod"
        by = f"by {len(owners)} objects, the most " if len(owners) > 1 else ""
        raise over(
            "pods",
            f"{total} pods requested ({by}{biggest.ref}, {where.short()}: {what})",
            budgets.pods,
            where,
        )
