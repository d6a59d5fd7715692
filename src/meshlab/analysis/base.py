"""What every analyzer shares: the Diagnostic it produces, its metadata, the context it reads.

An analyzer is one concern (VirtualService destinations, DestinationRule subsets, Gateways...).
It declares the kinds it reads, reads them only through `Context.of_kind` (a meta-test checks
that the two agree), and reports only through the message constructors in `messages.py`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import field
from functools import cached_property
from typing import Any, ClassVar, Literal

from meshlab.errors import Location, printable
from meshlab.load.manifests import Rejected, Resource
from meshlab.mesh.names import CLUSTER_DOMAIN
from meshlab.mesh.registry import PodInstance, Registry, build_registry
from meshlab.records import dataclass

Level = Literal["error", "warning", "info"]
LEVELS: tuple[Level, ...] = ("info", "warning", "error")  # ascending severity

#: Kinds whose objects make the service registry (Services) and the pods (workloads).
SERVICE_KINDS = ("Service",)
WORKLOAD_KINDS = ("Deployment", "Pod")


def severity(level: Level) -> int:
    return LEVELS.index(level)


@dataclass(frozen=True)
class Diagnostic:
    """One finding: `rules.yaml:14:9: error IST0101 [VirtualService default/x] message`."""

    code: str
    level: Level
    message: str
    resource: str | None
    location: Location | None
    hint: str | None = None
    hosts: tuple[
        str, ...
    ] = ()  # FQDNs the finding is about: checks pick the ones for their request
    explains_traffic: bool = False  # a likely cause of a split that differs from the weights
    name: str = ""  # the message's name in the catalogue, e.g. ReferencedResourceNotFound/host

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        resource = f" [{self.resource}]" if self.resource else ""
        text = printable(f"{where}{self.level} {self.code}{resource} {self.message}")
        return text + (f"\n  hint: {printable(self.hint)}" if self.hint else "")

    def sort_key(self) -> tuple[str, int, int, int, str, str]:
        where = self.location
        return (
            str(where.path) if where else "",
            where.line if where else 0,
            where.column if where else 0,
            -severity(self.level),
            self.code,
            self.message,
        )

    def to_json(self) -> dict[str, Any]:
        where = self.location
        return {
            "code": self.code,
            "level": self.level,
            "message": self.message,
            "resource": self.resource,
            "file": str(where.path) if where else None,
            "line": where.line if where else None,
            "column": where.column if where else None,
            "location": str(where) if where else None,
            "hint": self.hint,
        }


@dataclass(frozen=True)
class Metadata:
    """`name` is unique; `inputs` are the kinds the analyzer reads; `needs` says which of
    services/pods must be in the input for *any* of its findings to mean anything (else it
    is skipped: every finding would be "no pod", "no Service"). An analyzer that can still
    say something without them runs, as istioctl's does (its analyzers are skipped only when
    a kind is unknown to the store: pkg/config/analysis/analyzer.go, RemoveSkipped), and
    holds back only the claims the missing kind decides (`Context.may_be_unlisted_service`)."""

    name: str
    description: str
    inputs: tuple[str, ...]
    needs: frozenset[Literal["services", "pods"]] = frozenset()


@dataclass
class Context:
    """The objects under analysis and Istio's view of them, plus where findings go."""

    resources: Sequence[Resource]
    namespace: str = "default"
    rejected: Sequence[Rejected] = ()
    diagnostics: list[Diagnostic] = field(default_factory=list)
    kinds_read: set[str] = field(default_factory=set)
    #: what the input holds of services/pods (analyze() sets it from the files and refusals)
    given: frozenset[str] = frozenset({"services", "pods"})
    #: need -> analyzers that held back a finding because the input lacks it
    withheld: dict[str, list[str]] = field(default_factory=dict)

    def may_be_unlisted_service(self, host: str, analyzer: str) -> bool:
        """With no Services in the input, a host in the cluster's `svc` domain may be one
        that simply was not given: "not found" would be noise, so it is held back (and
        ML0001 names the analyzer). Any other host can never be a Service, so it is
        still checked, as istioctl checks it."""
        if "services" in self.given or not host.endswith(f".svc.{CLUSTER_DOMAIN}"):
            return False
        names = self.withheld.setdefault("services", [])
        if analyzer not in names:
            names.append(analyzer)
        return True

    def of_kind(self, *kinds: str) -> list[Resource]:
        """The objects of these kinds, in apply order (recorded for the inputs meta-test)."""
        self.kinds_read.update(kinds)
        return [r for r in self.resources if r.kind in kinds]

    @cached_property
    def _registry(self) -> Registry:
        return build_registry(self.resources)

    @property
    def registry(self) -> Registry:
        """Services with their endpoints and the pods synthesized from Deployments."""
        self.kinds_read.update(SERVICE_KINDS + WORKLOAD_KINDS)
        return self._registry

    @cached_property
    def _pods_by_label(self) -> dict[tuple[str, str], list[PodInstance]]:
        index: dict[tuple[str, str], list[PodInstance]] = {}
        for pod in self.registry.pods:
            for pair in pod.labels.items():
                index.setdefault(pair, []).append(pod)
        return index

    def pods_with(
        self, selector: Mapping[str, str], namespace: str | None = None
    ) -> list[PodInstance]:
        """The pods a plain selector picks (in `namespace`, or anywhere), from an index by
        label: a folder of a thousand objects is not every pod against every selector."""
        registry = self.registry
        if not selector:
            found = registry.pods
        else:
            pair = min(selector.items(), key=lambda kv: len(self._pods_by_label.get(kv, ())))
            found = self._pods_by_label.get(pair, [])
        return [
            p
            for p in found
            if (namespace is None or p.namespace == namespace)
            and all(p.labels.get(k) == v for k, v in selector.items())
        ]

    @property
    def has_services(self) -> bool:
        return any(r.kind in SERVICE_KINDS for r in self.resources)

    @property
    def has_pods(self) -> bool:
        return any(r.kind in WORKLOAD_KINDS for r in self.resources)

    def report(self, diagnostic: Diagnostic) -> None:
        self.diagnostics.append(diagnostic)


class Analyzer(ABC):
    metadata: ClassVar[Metadata]

    @abstractmethod
    def analyze(self, ctx: Context) -> None:
        """Read ctx, report findings with ctx.report(message(...))."""
