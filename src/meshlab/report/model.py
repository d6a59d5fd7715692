"""The report of a lab run as one typed model: built once by the pipeline, written as JSON by
``model_dump_json`` (`meshlab run --json`), read back typed by ``model_validate_json``
(`meshlab results-page`). The text, the JUnit XML and the results page all render it.

The JSON fields are documented in docs/reference/report.md. Readers accept reports of older
meshlab versions: fields added since have defaults.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from meshlab.analysis import Diagnostic
from meshlab.checks.base import CheckResult
from meshlab.load.lab import Lab
from meshlab.mesh.plan import Note
from meshlab.version import __version__

__all__ = [
    "BucketReport",
    "CauseReport",
    "ChainEdge",
    "CheckReport",
    "DiagnosticReport",
    "GraphNode",
    "NoteReport",
    "PodReport",
    "RequestReport",
    "RunReport",
    "SplitCheckReport",
    "TrafficGraph",
    "check_report",
    "run_report",
]


class _Model(BaseModel):
    # Finite numbers only (JSON has no NaN); unknown fields of a newer report are ignored.
    # defer_build: a schema is built on first use, so a run builds the few its report uses
    # (the split check's, the graph's, RunReport's: ~7 ms) instead of all 13 on import (~24 ms)
    model_config = ConfigDict(allow_inf_nan=False, extra="ignore", defer_build=True)


class NoteReport(_Model):
    """Something the backend does not simulate (`notes`)."""

    message: str
    location: str | None = None


class DiagnosticReport(_Model):
    """A finding of the static analysis, as `meshlab analyze --json` writes it."""

    code: str = "?"
    level: str = "info"
    message: str = ""
    resource: str | None = None
    file: str | None = None
    line: int | None = None
    column: int | None = None
    location: str | None = None
    hint: str | None = None

    @classmethod
    def of(cls, diagnostic: Diagnostic) -> DiagnosticReport:
        return cls.model_validate(diagnostic.to_json())


class GraphNode(_Model):
    """A node of the versioned app graph (Kiali's `versionedApp`): where the requests started
    (`origin`), one version of an app (`version`: every pod with those app and version labels),
    or the calls to a Service that no pod answered (`unanswered`: Envoy's own 503s, faults)."""

    id: str
    kind: str = "version"  # origin | version | unanswered
    app: str = ""  # origin: how the requests started; unanswered: the Service called
    version: str = ""
    pods: int = 0  # distinct pods seen behind the node (the origin: 0)
    requests: int = 0  # calls it received (the origin: requests sent)
    depth: int = 0  # the fewest calls between the origin and this node


class ChainEdge(_Model):
    """All the calls from one node to another through one Service, counted: Kiali's edge,
    with its error rate (4xx, 5xx and no response, as Kiali counts errors)."""

    source: str  # a GraphNode id
    target: str
    caller_app: str = ""
    caller_version: str = ""
    callee_app: str = ""  # "" when no pod answered (the target is an `unanswered` node)
    callee_version: str = ""
    service: str = ""  # the Service called, as the hop named it
    requests: int = 0
    errors: dict[str, int] = Field(default={})  # "HTTP 503", "no response" -> calls
    flags: dict[str, int] = Field(default={})  # Envoy flags of the errors -> calls

    @property
    def failed(self) -> int:
        return sum(self.errors.values())

    @property
    def error_rate(self) -> float:
        return self.failed / self.requests if self.requests else 0.0


class TrafficGraph(_Model):
    """The versioned app graph of a check's requests and every call behind them, aggregated
    by app and version (never per request or per pod), so its size is bounded by the lab's
    apps, whatever the number of requests."""

    origin: str = "meshlab probe"
    requests: int = 0
    nodes: list[GraphNode] = Field(default=[])
    edges: list[ChainEdge] = Field(default=[])
    folded: int = 0  # versions merged into an app's "other versions" node to bound the page

    @property
    def depth(self) -> int:
        """The longest chain of calls seen (1: the origin's call only)."""
        return max((n.depth for n in self.nodes), default=0)

    def node(self, ident: str) -> GraphNode | None:
        return next((n for n in self.nodes if n.id == ident), None)


class CheckReport(_Model):
    """Every check's fields. A kind's own fields ride along (extra fields are kept)."""

    model_config = ConfigDict(extra="allow")

    name: str = "check"
    kind: str = ""
    passed: bool = False
    outcome: str = "?"  # pass | fail | inconclusive | error
    requests: int = 0
    points: float = 0.0
    points_awarded: float = 0.0
    expected: dict[str, float] = Field(default={})
    observed: dict[str, int] = Field(default={})
    message: str = ""
    seconds: float = 0.0  # how long the check ran (JUnit's `time`)
    diagnostics: list[DiagnosticReport] = Field(default=[])
    traffic: TrafficGraph | None = None  # None: a report from before the chain was traced


class RequestReport(_Model):
    url: str = ""
    method: str = "GET"
    # where the request started: mesh, browser, no-sidecar, workload NAME (older reports: mesh)
    origin: str = "mesh"


class BucketReport(_Model):
    """One bucket's verdict, with the numbers that decided it (stored, never recomputed)."""

    bucket: str = "?"
    expected: float = 0.0
    count: int = 0
    share: float = 0.0  # count / requests
    band: tuple[float, float] = (0.0, 0.0)  # counts as configured; default: exactly expected
    interval: tuple[float, float] = (0.0, 1.0)  # at level 1 - alpha
    alpha: float | None = None  # the level of `interval` (None: a report from before it)
    pass_interval: tuple[float, float] | None = None  # the 1 - beta interval a pass rests on
    status: str = "undecided"  # ok | off | undecided

    @model_validator(mode="before")
    @classmethod
    def _band_defaults_to_the_share(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "band" not in data:
            expected = data.get("expected", 0.0)
            return {**data, "band": (expected, expected)}
        return data


class PodReport(_Model):
    name: str = "?"
    labels: dict[str, str] = Field(default={})
    count: int = 0


class CauseReport(_Model):
    bucket: str = ""
    effect: str = ""
    reason: str = ""
    location: str | None = None


class SplitCheckReport(CheckReport):
    """`kind: split`: the request, the test and its verdict per bucket, who answered."""

    kind: str = "split"
    request: RequestReport = Field(default_factory=RequestReport)
    by: str = "version"
    by_service: str | None = None  # `by` read at that Service's hop of the chain (None: depth 1)
    expect: str = "configured"  # configured | explicit
    route: str | None = None
    method: str = ""  # the test that decided
    alpha: float = 1e-6
    beta: float = 1e-3
    delta: float = 0.1
    buckets: list[BucketReport] = Field(default=[])
    sources: dict[str, list[str]] = Field(default={})
    causes: list[CauseReport] = Field(default=[])
    response_flags: dict[str, dict[str, int]] = Field(default={})
    pods: list[PodReport] | None = None  # None: a report from before pods were recorded
    errors: dict[str, int] = Field(default={})

    @model_validator(mode="before")
    @classmethod
    def _shares_default_to_the_counts(cls, data: Any) -> Any:
        """A bucket without `share` (an older or hand-written report): count / requests."""
        if not isinstance(data, Mapping) or not isinstance(data.get("buckets"), list):
            return data
        n = data.get("requests")
        n = n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 0
        buckets = [
            {**b, "share": b["count"] / n if n and isinstance(b.get("count"), int) else 0.0}
            if isinstance(b, Mapping) and "share" not in b
            else b
            for b in data["buckets"]
        ]
        return {**data, "buckets": buckets}

    @property
    def sequential(self) -> bool:
        return self.method.startswith("sequential")

    @property
    def service(self) -> str:
        """The host the request was sent to: the service node of the graph (for a browser,
        the ingress gateway it reaches, whatever the URL's host)."""
        if self.request.origin == "browser":
            return "istio-ingressgateway"
        match = re.match(r"[a-z]+://([^/:?#]+)", self.request.url)
        return match.group(1) if match else "service"

    @property
    def client(self) -> str:
        """Who sent the requests: the client node of the graph."""
        origin = self.request.origin
        if origin in ("browser", "no-sidecar"):
            return origin
        return origin.removeprefix("workload ") if origin.startswith("workload ") else "client"

    def shown_buckets(self) -> list[BucketReport]:
        """The buckets to draw: the verdict's, or (no verdict per bucket) at least what was
        expected and observed, undecided."""
        if self.buckets:
            return self.buckets
        n = self.requests
        names = [*self.expected, *(k for k in self.observed if k not in self.expected)]
        return [
            BucketReport(
                bucket=name,
                expected=self.expected.get(name, 0.0),
                count=self.observed.get(name, 0),
                share=self.observed.get(name, 0) / n if n else 0.0,
                band=(self.expected.get(name, 0.0), self.expected.get(name, 0.0)),
            )
            for name in names
        ]

    def tested_alpha(self) -> float:
        """The level of the buckets' intervals, as the test recorded it: alpha, split
        Bonferroni-wise over the tested shares (reports from before it: alpha)."""
        levels = [b.alpha for b in self.buckets if b.alpha is not None]
        return min(levels, default=self.alpha)


def _check_tag(value: Any) -> str:
    if isinstance(value, BaseModel):
        return "split" if isinstance(value, SplitCheckReport) else "other"
    if isinstance(value, Mapping) and (value.get("kind") == "split" or "buckets" in value):
        return "split"
    return "other"


AnyCheckReport = Annotated[
    Annotated[SplitCheckReport, Tag("split")] | Annotated[CheckReport, Tag("other")],
    Discriminator(_check_tag),
]


class RunReport(_Model):
    """One run of a lab: `meshlab run --json` writes exactly this model's dump."""

    meshlab: str = "?"  # the version that wrote it
    lab: str
    lab_dir: str = ""  # the lab's folder, as given to `meshlab run`
    title: str = ""
    backend: str = ""
    backend_info: dict[str, str] = Field(default={})
    passed: bool = False
    points: float = 0.0
    points_awarded: float = 0.0
    seconds: float = 0.0
    notes: list[NoteReport] = Field(default=[])
    diagnostics: list[DiagnosticReport] = Field(default=[])
    checks: list[AnyCheckReport]


def check_report(result: CheckResult) -> CheckReport:
    """A check's result as the report carries it: the common fields, then the kind's details."""
    data: dict[str, Any] = {
        "name": result.name,
        "kind": result.kind,
        "passed": result.passed,
        "outcome": result.outcome,
        "requests": result.requests,
        "points": result.points,
        "points_awarded": result.points_awarded,
        "expected": dict(result.expected),
        "observed": dict(result.observed),
        "message": result.message,
        "seconds": round(result.seconds, 3),
        **result.details,
    }
    model = SplitCheckReport if result.kind == "split" else CheckReport
    return model.model_validate(data)


def run_report(
    lab: Lab,
    backend: Mapping[str, str],
    results: Sequence[CheckResult],
    notes: Sequence[Note],
    seconds: float,
    diagnostics: Sequence[Diagnostic] = (),
) -> RunReport:
    """The report of one run, from what the pipeline collected."""
    return RunReport(
        meshlab=__version__,
        lab=lab.name,
        lab_dir=str(lab.root),
        title=lab.title,
        backend=backend.get("backend", ""),
        backend_info=dict(backend),
        passed=all(r.passed for r in results),
        points=sum(r.points for r in results),
        points_awarded=sum(r.points_awarded for r in results),
        seconds=round(seconds, 3),
        notes=[
            NoteReport(message=n.message, location=str(n.location) if n.location else None)
            for n in notes
        ],
        diagnostics=[DiagnosticReport.of(d) for d in diagnostics],
        checks=[check_report(r) for r in results],
    )
