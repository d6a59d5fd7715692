"""The check-kind registry and the data every kind shares (spec, context, result)."""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from meshlab.backends.base import Deployed, Session
from meshlab.checks.ledger import CheckBudget, RunLedger
from meshlab.checks.stats import Design
from meshlab.errors import ErrorCollector, InputError, reading_input
from meshlab.load.lab import CheckEntry, Lab, load_lab
from meshlab.load.manifests import Resource
from meshlab.load.schema import Strict, validate
from meshlab.mesh.plan import MeshPlan
from meshlab.records import dataclass

if TYPE_CHECKING:
    from meshlab.analysis import Diagnostic


class CheckSpec(Strict):
    """Fields every check has; each kind extends this with its own."""

    name: str = Field(min_length=1)
    kind: str
    points: float = Field(default=1.0, ge=0, le=1e6)  # finite, and so are their sums
    description: str | None = None


@dataclass(frozen=True)
class Check(CheckEntry):
    """A lab.yaml check validated against its kind's schema (`spec`, that kind's model)."""

    spec: Any = None


@dataclass(frozen=True)
class ProgressUpdate:
    """Where a check stands, for a progress display: requests sent, the best current estimate
    of how many it will send in all (None before the first look), the bucket a reader cares
    about (the smallest expected share: the canary) and its running count."""

    sent: int
    expected_total: int | None
    focus: str | None = None
    focus_count: int = 0
    done: bool = False

    @property
    def focus_share(self) -> float | None:
        return self.focus_count / self.sent if self.focus is not None and self.sent else None


Progress = Callable[[ProgressUpdate], None]


@dataclass
class CheckContext:
    """Everything a check may read: the objects, Istio's view of them, the live mesh (send
    through `session()`, never a client shared with another check)."""

    resources: list[Resource]
    plan: MeshPlan
    mesh: Deployed
    design: Design = field(default_factory=Design)
    requests_override: int | None = None
    progress: Progress = lambda update: None
    diagnostics: list[Diagnostic] | None = None  # None: not analyzed yet (see analysis())
    budget: CheckBudget = field(default_factory=lambda: RunLedger().for_check())

    def session(self) -> Session:
        """Fresh client state (no cookies, no connections) for this check or one of its
        simulated users: checks never send through a client another check used."""
        return self.mesh.session()

    def analysis(self) -> list[Diagnostic]:
        """The static analysis of these objects: the run's, or computed once on demand."""
        if self.diagnostics is None:
            from meshlab.analysis import analyze

            self.diagnostics = analyze(self.resources, self.plan.client_namespace)
        return self.diagnostics


@dataclass
class CheckResult:
    """What one check found, in the form every report reads: the verdict (pass, fail, inconclusive
    or error) and its message, the requests spent, the points, and the expected against the observed
    traffic."""

    name: str
    kind: str
    passed: bool
    outcome: str  # pass | fail | inconclusive | error
    message: str
    requests: int
    points: float
    expected: Mapping[str, float] = field(default_factory=dict)
    observed: Mapping[str, int] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    seconds: float = 0.0  # how long the check ran: set by the runner

    @property
    def points_awarded(self) -> float:
        return self.points if self.passed else 0.0


class CheckKind(ABC):
    """A kind of check: its lab.yaml schema and how to run it against a deployed mesh."""

    kind: ClassVar[str]
    spec_model: ClassVar[type[CheckSpec]]

    @abstractmethod
    def run(self, check: Check, context: CheckContext) -> CheckResult: ...

    def planned_requests(
        self, check: Check, plan: MeshPlan, design: Design, override: int | None, limit: int
    ) -> int | None:
        """The most requests this check may send (its fixed N, or its test's cap), so a
        check no budget can judge is refused before start; None when a kind cannot say.
        Above `limit` an estimate will do (it is refused either way)."""
        return None


_REGISTRY: dict[str, CheckKind] = {}

# Each built-in kind's module, imported when a lab names the kind (or the whole registry is
# read): `meshlab run` imports only the kinds its lab.yaml uses. Importing it registers it.
BUILTIN_KINDS: dict[str, str] = {
    "split": "meshlab.checks.split",
    "status": "meshlab.checks.status",
    "ejection": "meshlab.checks.ejection",
    "overflow": "meshlab.checks.overflow",
    "sticky": "meshlab.checks.sticky",
    "reachability": "meshlab.checks.reachability",
    "latency": "meshlab.checks.latency",
}


def register(kind: type[CheckKind]) -> type[CheckKind]:
    """Class decorator: make a check kind available to lab.yaml under `kind.kind`."""
    if kind.kind in _REGISTRY:
        raise ValueError(f"check kind {kind.kind!r} registered twice")
    _REGISTRY[kind.kind] = kind()
    return kind


class _Kinds(Mapping[str, CheckKind]):
    """Every kind by name; a built-in kind's module is imported on first lookup."""

    def __getitem__(self, name: str) -> CheckKind:
        if name not in _REGISTRY and name in BUILTIN_KINDS:
            importlib.import_module(BUILTIN_KINDS[name])
        return _REGISTRY[name]

    def __iter__(self) -> Iterator[str]:
        return iter(sorted({*BUILTIN_KINDS, *_REGISTRY}))

    def __len__(self) -> int:
        return len({*BUILTIN_KINDS, *_REGISTRY})


def registry() -> Mapping[str, CheckKind]:
    return _Kinds()


def parse_check(entry: CheckEntry) -> Check:
    """Validate a lab.yaml check against its kind's schema: InputError with file:line."""
    raw, document, at = entry.raw, entry.document, entry.at
    kinds = registry()
    where = document.locate(at)
    if not isinstance(raw, dict):
        raise InputError("a check must be a mapping with name and kind", where)
    kind = raw.get("kind")
    if not isinstance(kind, str):
        raise InputError(
            'check: missing required field "kind"',
            where,
            hint=f"known kinds: {', '.join(sorted(kinds))}",
        )
    if kind not in kinds:
        raise InputError(
            f'unknown check kind "{kind}"',
            document.locate((*at, "kind")),
            hint=f"known kinds: {', '.join(sorted(kinds))}",
        )
    spec = validate(kinds[kind].spec_model, raw, document, at, what=f"check ({kind})")
    return Check(spec.name, kind, raw, document, at, spec)


@dataclass(frozen=True)
class CheckedLab:
    """A lab whose checks all validated against their kinds."""

    lab: Lab
    checks: tuple[Check, ...]


@reading_input("the lab")
def load_checked_lab(path: Path) -> CheckedLab:
    """lab.yaml with every check validated; all mistakes of the file reported together."""
    errors = ErrorCollector()
    lab = load_lab(path, errors)
    checks = []
    for entry in lab.checks:
        with errors.collecting():
            checks.append(parse_check(entry))
    errors.raise_if_any()
    return CheckedLab(lab, tuple(checks))
